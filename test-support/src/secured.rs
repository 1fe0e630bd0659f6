//! The stack with security on (`STACK_SECURITY=on`): Pravega standalone with TLS and auth,
//! Prometheus with HTTPS and basic auth, Flink's REST API with mutual TLS, all from the CA and
//! accounts `deploy/local/lib/security.sh` makes. It runs beside the main stack (every port
//! shifted by [`PORT_OFFSET`], its own run directory) and is stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{repo_root, stdout_of, Component, Stack};

/// How far the secured stack's ports are shifted from the main stack's (the demo's test uses
/// 100: no port of the three stacks meets another).
pub const PORT_OFFSET: u16 = 400;

/// The Pravega account with every permission (the stack's own).
pub const PRAVEGA_ADMIN: &str = "admin";
/// The Pravega account that may only read the scope's metadata (the autoscaler's).
pub const PRAVEGA_READER: &str = "autoscaler";
/// The Pravega account that may create and write the scope's streams (the generator's).
pub const PRAVEGA_WRITER: &str = "generator";
/// Prometheus' basic-auth account.
pub const PROMETHEUS_USER: &str = "autoscaler";

/// A running secured stack.
pub struct SecuredStack {
    /// Its endpoints, as the stack's `env` prints them.
    pub stack: Stack,
    /// Where the CA, certificates and passwords are.
    pub material: PathBuf,
    /// The scope the restricted accounts are limited to.
    pub scope: String,
    run_dir: PathBuf,
}

const COMPONENTS: [Component; 3] = [Component::Pravega, Component::Prometheus, Component::Flink];

impl SecuredStack {
    /// Starts Pravega, Prometheus and Flink with security on (the material is made first if
    /// missing), and waits until each answers.
    pub fn start() -> SecuredStack {
        let run_dir = repo_root().join("target/secured-stack");
        let names: Vec<&str> = COMPONENTS.iter().map(|c| c.name()).collect();
        let run = |args: &[&str]| -> String {
            stdout_of(
                SecuredStack::command(&run_dir).args(args),
                &format!("`stack {}` with security on", args.join(" ")),
            )
        };
        run(&[&["up"], names.as_slice()].concat());
        let env = run(&["env"]);
        let var = |name: &str| {
            env.lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("`stack env` printed no {name}"))
                .to_string()
        };
        SecuredStack {
            stack: Stack::from_vars(&COMPONENTS, var),
            material: var("STACK_SECURITY_DIR").into(),
            scope: var("STACK_SECURITY_SCOPE"),
            run_dir,
        }
    }

    fn command(run_dir: &Path) -> Command {
        let mut command = Command::new(repo_root().join("deploy/local/stack"));
        command
            .env("STACK_SECURITY", "on")
            .env("STACK_PORT_OFFSET", PORT_OFFSET.to_string())
            .env("SEGMENT_AUTOSCALER_RUN_DIR", run_dir);
        command
    }

    /// The argv (for a command target) that sets the secured stack's TaskManagers to
    /// `{replicas}`, and the one that prints how many run.
    pub fn taskmanagers_command(&self) -> (Vec<String>, Vec<String>) {
        let command = SecuredStack::command(&self.run_dir);
        let mut argv = vec!["env".to_string()];
        argv.extend(command.get_envs().map(|(k, v)| {
            format!(
                "{}={}",
                k.to_string_lossy(),
                v.unwrap_or_default().to_string_lossy()
            )
        }));
        argv.push(command.get_program().to_string_lossy().into_owned());
        argv.push("taskmanagers".into());
        let mut set = argv.clone();
        set.push("{replicas}".into());
        (argv, set)
    }

    /// A file of the security material, e.g. `ca.pem`, `other-ca.pem`, `client.key`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.material.join(name)
    }

    /// The file holding a password: `pravega-USER`, `prometheus-USER`.
    pub fn password_file(&self, account: &str) -> PathBuf {
        self.material.join("passwords").join(account)
    }

    /// A password, to look for it where it must not be.
    pub fn password(&self, account: &str) -> String {
        std::fs::read_to_string(self.password_file(account)).expect("read a password")
    }

    /// A controller client with the stack's own account.
    #[cfg(feature = "pravega")]
    pub fn admin_controller(&self) -> pravega_controller_client::ControllerClientImpl {
        crate::pravega::secured_controller(
            &self.stack.pravega_controller,
            &self.file("ca.pem"),
            PRAVEGA_ADMIN,
            &self.password(&format!("pravega-{PRAVEGA_ADMIN}")),
        )
    }
}

/// Every password the stack with security on uses, by the file holding it (`pravega-admin`,
/// ...), from the material `deploy/local/stack` made: to look for them where they must not be.
pub fn passwords() -> Vec<(String, String)> {
    let env = stdout_of(
        Command::new(repo_root().join("deploy/local/stack"))
            .arg("env")
            .env("STACK_SECURITY", "on"),
        "`stack env` with security on",
    );
    let dir = env
        .lines()
        .find_map(|line| line.strip_prefix("export STACK_SECURITY_DIR="))
        .expect("`stack env` names STACK_SECURITY_DIR");
    std::fs::read_dir(Path::new(dir).join("passwords"))
        .expect("the stack's passwords")
        .map(|entry| {
            let path = entry.expect("a password file").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).expect("a password"))
        })
        .collect()
}

impl Drop for SecuredStack {
    fn drop(&mut self) {
        let names: Vec<&str> = COMPONENTS.iter().map(|c| c.name()).collect();
        let status = SecuredStack::command(&self.run_dir)
            .arg("down")
            .args(&names)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("stopping the secured stack failed: {status:?}");
        }
    }
}
