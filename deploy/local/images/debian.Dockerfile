# The Debian base of every local image: debootstrap's minbase of the suite (images.sh makes
# rootfs.tar), imported as one layer. Stands in for the public debian image here.
FROM scratch
ADD rootfs.tar /
CMD ["/bin/bash"]
