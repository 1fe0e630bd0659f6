// Pravega's password file for the local stack's security (deploy/local/lib/security.sh): reads
// "user:password:acl" lines on stdin and prints them with each password encrypted by Pravega's
// own StrongPasswordProcessor, the format its PasswordAuthHandler reads. Run as a single-file
// program on Pravega's classpath.

import io.pravega.shared.security.crypto.StrongPasswordProcessor;
import java.io.BufferedReader;
import java.io.InputStreamReader;

public class PravegaAccounts {
    public static void main(String[] args) throws Exception {
        StrongPasswordProcessor processor = StrongPasswordProcessor.builder().build();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            // The ACL holds colons (prn::/scope:demo): split off the user and password only.
            String[] fields = line.split(":", 3);
            if (fields.length != 3) {
                throw new IllegalArgumentException("expected user:password:acl");
            }
            System.out.println(fields[0] + ":" + processor.encryptPassword(fields[1]) + ":" + fields[2]);
        }
    }
}
