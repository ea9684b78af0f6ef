#!/bin/sh
# packetdrill scripts call ../common/defaults.sh to configure a Linux TUN device
# and sysctls. Against libtapstack (--so_filename) there is no device: the
# stack in virtual time is configured by --so_flags, so this does nothing.
exit 0
