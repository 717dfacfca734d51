SUMMARY = "AWS IoT Fleet Provisioning client in one file"
DESCRIPTION = "fleetprov exchanges a claim certificate for the device's own \
certificate through AWS IoT Fleet Provisioning, as the AWS IoT Device Client \
does, and writes the Device Client's runtime config. It is a prebuilt Node.js \
single executable: nothing is compiled."
HOMEPAGE = "https://github.com/fleetprov/fleetprov"
SECTION = "net"
# fleetprov is Apache-2.0. The binary bundles Node.js (MIT, and the licences of
# the components its LICENSE lists, declared as meta-oe's nodejs recipe does)
# and npm packages (MIT, Apache-2.0, ISC, BSD-3-Clause, 0BSD): their texts are
# in THIRD_PARTY_NOTICES, whose MD5 `deno task build` writes to the .inc.
LICENSE = "Apache-2.0 & MIT & ISC & BSD-2-Clause & BSD-3-Clause & Artistic-2.0 & 0BSD"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57 \
                    file://THIRD_PARTY_NOTICES;md5=${FLEETPROV_NOTICES_MD5}"

# PV and the SHA-256 of each release binary, written by `deno task build`.
require fleetprov-release.inc

# Where the release binaries are fetched from. Point it at a mirror or a local
# folder (file:///path/to/dist) to use your own build.
FLEETPROV_RELEASE_URI ?= "https://github.com/fleetprov/fleetprov/releases/download/v${PV}"

# Claim credentials and service settings baked into the image. When any of the
# first five is unset, the image gets /etc/fleetprov/fleetprov.conf.example only,
# and fleetprov.service waits (ConditionPathExists) for /etc/fleetprov/fleetprov.conf.
FLEETPROV_ENDPOINT ?= ""
FLEETPROV_TEMPLATE_NAME ?= ""
# Paths on the build host:
FLEETPROV_CLAIM_CERT ?= ""
FLEETPROV_CLAIM_KEY ?= ""
FLEETPROV_ROOT_CA ?= ""
# Optional: the claim connection's client id, and template parameters (a JSON object).
FLEETPROV_CLAIM_THING_NAME ?= ""
FLEETPROV_TEMPLATE_PARAMETERS ?= ""
# Optional: the template `fleetprov rotate` registers a new certificate with.
# fleetprov-rotate.timer checks the certificate's age daily; once it is due,
# rotating needs this (without it that run fails with exit 78 and says so).
FLEETPROV_ROTATION_TEMPLATE_NAME ?= ""

FLEETPROV_ARCH = "unsupported"
FLEETPROV_ARCH:aarch64 = "arm64"
FLEETPROV_ARCH:arm = "armv7"
FLEETPROV_ARCH:x86-64 = "x64"
COMPATIBLE_HOST = "(aarch64|arm|x86_64).*-linux.*"

FLEETPROV_BINARY = "fleetprov-${PV}-linux-${FLEETPROV_ARCH}"
FLEETPROV_BINARY_URI = "${FLEETPROV_RELEASE_URI}/fleetprov-linux-${FLEETPROV_ARCH};name=${FLEETPROV_ARCH};downloadfilename=${FLEETPROV_BINARY}"
SRC_URI = "${FLEETPROV_BINARY_URI} \
           file://fleetprov.service \
           file://fleetprov-provisioned.target \
           file://fleetprov-rotate.service \
           file://fleetprov-rotate.timer \
           file://fleetprov.conf.example \
           file://run-ptest \
           file://LICENSE \
           file://THIRD_PARTY_NOTICES \
          "

# Yocto 5.0 (scarthgap) unpacks into WORKDIR; from 5.1 on, oe-core sets
# UNPACKDIR (WORKDIR/sources) and S must lie inside it, never be WORKDIR.
S = "${@d.getVar('UNPACKDIR') or d.getVar('WORKDIR')}"

# BitBake checks the SHA-256 of what it downloads, but not of file:// URIs:
# check the binary against fleetprov-release.inc however it was fetched.
python fleetprov_check_binary() {
    uri = d.getVar("FLEETPROV_BINARY_URI")
    name = d.getVar("FLEETPROV_ARCH")
    expected = d.getVarFlag("SRC_URI", name + ".sha256sum")
    if not expected:
        bb.fatal("fleetprov: fleetprov-release.inc has no SRC_URI[%s.sha256sum]: "
                 "this layer was built without the %s binary." % (name, name))
    path = bb.fetch2.Fetch([uri], d).localpath(uri)
    actual = bb.utils.sha256_file(path)
    if actual != expected:
        bb.fatal("fleetprov: %s has SHA-256 %s, but fleetprov-release.inc expects %s. "
                 "Use the binary this layer was built with (deno task build writes both "
                 "into dist/), or the release's own." % (path, actual, expected))
}
do_fetch[postfuncs] += "fleetprov_check_binary"

# The local fetcher ignores downloadfilename= and recreates a file:// URI's
# absolute path under the unpack directory: give the binary its one name.
python fleetprov_place_binary() {
    import os, shutil
    uri = d.getVar("FLEETPROV_BINARY_URI")
    target = os.path.join(d.getVar("S"), d.getVar("FLEETPROV_BINARY"))
    if not os.path.exists(target):
        shutil.copy2(bb.fetch2.Fetch([uri], d).localpath(uri), target)
}
do_unpack[postfuncs] += "fleetprov_place_binary"

inherit systemd ptest

# fleetprov-rotate.service is started by its timer only.
SYSTEMD_SERVICE:${PN} = "fleetprov.service fleetprov-rotate.timer"
SYSTEMD_AUTO_ENABLE = "enable"

# The official Node.js runtimes inside need glibc >= 2.28 and these libraries
# (their ELF NEEDED entries; Node.js 26 on x64/arm64 and 20 on armv7 all link
# libatomic).
RDEPENDS:${PN} = "glibc libstdc++ libgcc libatomic"
RDEPENDS:${PN}-ptest += "${PN}"

# A prebuilt, already stripped single executable: the SEA blob lives in an ELF
# note that must stay untouched.
INHIBIT_PACKAGE_STRIP = "1"
INHIBIT_PACKAGE_DEBUG_SPLIT = "1"
INHIBIT_SYSROOT_STRIP = "1"
INSANE_SKIP:${PN} += "already-stripped ldflags"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

FLEETPROV_REQUIRED = "FLEETPROV_ENDPOINT FLEETPROV_TEMPLATE_NAME FLEETPROV_CLAIM_CERT FLEETPROV_CLAIM_KEY FLEETPROV_ROOT_CA"
FLEETPROV_CONFIGURED = "${@'1' if all(d.getVar(v) for v in d.getVar('FLEETPROV_REQUIRED').split()) else ''}"

python fleetprov_check_settings() {
    import os
    unset = [v for v in d.getVar("FLEETPROV_REQUIRED").split() if not d.getVar(v)]
    if unset:
        bb.warn("fleetprov: %s unset: the image gets /etc/fleetprov/fleetprov.conf.example "
                "only, and fleetprov.service does nothing until /etc/fleetprov/fleetprov.conf "
                "exists. Set them in local.conf to provision at first boot." % ", ".join(unset))
    for v in ("FLEETPROV_CLAIM_CERT", "FLEETPROV_CLAIM_KEY", "FLEETPROV_ROOT_CA"):
        path = d.getVar(v)
        if path and not os.path.isfile(path):
            bb.fatal("fleetprov: %s = %s: no such file on the build host." % (v, path))
}

python fleetprov_write_config() {
    import json, os
    if not d.getVar("FLEETPROV_CONFIGURED"):
        return
    etc = d.getVar("sysconfdir") + "/fleetprov"
    config = {
        "endpoint": d.getVar("FLEETPROV_ENDPOINT"),
        "cert": etc + "/claim-certificate.pem.crt",
        "key": etc + "/claim-private.pem.key",
        "root-ca": etc + "/root-ca.pem",
        "fleet-provisioning": {
            "enabled": True,
            "template-name": d.getVar("FLEETPROV_TEMPLATE_NAME"),
        },
    }
    if d.getVar("FLEETPROV_CLAIM_THING_NAME"):
        config["thing-name"] = d.getVar("FLEETPROV_CLAIM_THING_NAME")
    if d.getVar("FLEETPROV_TEMPLATE_PARAMETERS"):
        parameters = d.getVar("FLEETPROV_TEMPLATE_PARAMETERS")
        try:
            json.loads(parameters)
        except ValueError as error:
            bb.fatal("fleetprov: FLEETPROV_TEMPLATE_PARAMETERS is not JSON: %s" % error)
        config["fleet-provisioning"]["template-parameters"] = parameters
    if d.getVar("FLEETPROV_ROTATION_TEMPLATE_NAME"):
        config["fleet-provisioning"]["rotation-template-name"] = d.getVar("FLEETPROV_ROTATION_TEMPLATE_NAME")
    path = d.getVar("D") + etc + "/fleetprov.conf"
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.chmod(path, 0o640)
}

do_install[prefuncs] += "fleetprov_check_settings"
do_install[postfuncs] += "fleetprov_write_config"
do_install[vardeps] += "${FLEETPROV_REQUIRED} FLEETPROV_CLAIM_THING_NAME FLEETPROV_TEMPLATE_PARAMETERS FLEETPROV_ROTATION_TEMPLATE_NAME"

do_install() {
    install -d ${D}${bindir}
    install -m 0755 ${S}/${FLEETPROV_BINARY} ${D}${bindir}/fleetprov

    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/fleetprov.service ${D}${systemd_system_unitdir}/fleetprov.service
    install -m 0644 ${S}/fleetprov-provisioned.target ${D}${systemd_system_unitdir}/fleetprov-provisioned.target
    install -m 0644 ${S}/fleetprov-rotate.service ${D}${systemd_system_unitdir}/fleetprov-rotate.service
    install -m 0644 ${S}/fleetprov-rotate.timer ${D}${systemd_system_unitdir}/fleetprov-rotate.timer

    # fleetprov refuses credentials outside a 0700 directory.
    install -d -m 0700 ${D}${sysconfdir}/fleetprov
    install -m 0640 ${S}/fleetprov.conf.example ${D}${sysconfdir}/fleetprov/fleetprov.conf.example

    if [ -n "${FLEETPROV_CONFIGURED}" ]; then
        install -m 0644 ${FLEETPROV_CLAIM_CERT} ${D}${sysconfdir}/fleetprov/claim-certificate.pem.crt
        install -m 0600 ${FLEETPROV_CLAIM_KEY} ${D}${sysconfdir}/fleetprov/claim-private.pem.key
        install -m 0644 ${FLEETPROV_ROOT_CA} ${D}${sysconfdir}/fleetprov/root-ca.pem
    fi
}

do_install_ptest() {
    sed 's/@PV@/${PV}/' ${S}/run-ptest > ${D}${PTEST_PATH}/run-ptest
    chmod 0755 ${D}${PTEST_PATH}/run-ptest
}

FILES:${PN} += "${systemd_system_unitdir}/fleetprov.service \
                ${systemd_system_unitdir}/fleetprov-provisioned.target \
                ${systemd_system_unitdir}/fleetprov-rotate.service \
                ${systemd_system_unitdir}/fleetprov-rotate.timer ${sysconfdir}/fleetprov"
CONFFILES:${PN} += "${sysconfdir}/fleetprov/fleetprov.conf"
