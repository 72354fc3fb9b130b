"""The lab's probe images, each a root filesystem packed as a tar and `docker import`ed on every node (there is
no registry here):

- `lab` (overlaytui/probe:lab): busybox-static + iputils ping + iperf3 with the shared libraries they need.
  iputils ping is needed because busybox ping has no `-M do` (no DF-bit MTU probing).
- `minimal` (overlaytui/probe:minimal): what a user's own image may be — a POSIX shell (dash), iputils ping and
  sleep, nothing else: no busybox applets, no iperf3, nc, nslookup or `timeout`. Tests probe with it to prove
  that a missing tool is reported as missing, never read as a network fault.
- `deep` (overlaytui/deep:lab): the deep view's reader (`--deep`, sources/deep.py): dash as /bin/sh (Debian's
  busybox shell runs its own applets before PATH's tools), busybox-static's applets, iproute2's ip and bridge,
  nsenter, iptables-legacy-save and iptables-nft-save (the xtables multi-binaries with their extensions, which
  iptables-save needs to print a rule's matches), and ethtool, nft and conntrack where the host has them (a tool
  the image lacks is read as missing, never as a fault).
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from .host import LabUnavailable, run

# The container's main process: sleep until told to stop, answering SIGTERM at once.
IMAGE_CMD = '["/bin/sh", "-c", "trap \'exit 0\' TERM INT; while :; do sleep 3600 & wait $!; done"]'
IMAGE_CHANGES = (f"CMD {IMAGE_CMD}", "LABEL overlaytui.probe-image=lab")
DEEP_IMAGE = "overlaytui/deep:lab"
DEEP_IMAGE_CHANGES = (f"CMD {IMAGE_CMD}", "LABEL overlaytui.deep-image=lab")
# dash is the image's /bin/sh: Debian's busybox shell prefers its own applets to PATH (its `ip` is not iproute2's)
DEEP_REQUIRED = {"dash": "dash", "busybox": "busybox-static", "ip": "iproute2", "bridge": "iproute2",
                 "nsenter": "util-linux", "xtables-legacy-multi": "iptables", "xtables-nft-multi": "iptables"}
DEEP_OPTIONAL = {"ethtool": "ethtool", "nft": "nftables", "conntrack": "conntrack"}
# the names the xtables multi-binaries answer to (they dispatch on argv[0])
XTABLES_NAMES = {"xtables-legacy-multi": ("iptables-legacy-save", "ip6tables-legacy-save"),
                 "xtables-nft-multi": ("iptables-nft-save", "ip6tables-nft-save")}
_LDD_PATH = re.compile(r"(/\S+)")


def _which(tool: str, package: str = "busybox-static iputils-ping iperf3") -> Path:
    path = shutil.which(tool)
    if path is None:
        raise LabUnavailable(f"the lab's images need `{tool}`: apt-get install -y {package}")
    return Path(path).resolve()


def xtables_extensions(multi: Path) -> list[Path]:
    """The xtables extension libraries (libxt_*.so...) beside the libxtables a multi-binary links: iptables-save
    loads them to print each match and target."""
    found: list[Path] = []
    for lib in shared_libraries(multi):
        if lib.name.startswith("libxtables.so"):
            # where iptables looks (XTABLES_LIBDIR, /usr/lib/<arch>/xtables): the real path, /lib may be a link
            for directory in (lib.parent / "xtables", Path("/usr") / lib.parent.relative_to("/") / "xtables"):
                if directory.is_dir():
                    # by their own names: some are links (libxt_MASQUERADE.so), iptables opens them by name
                    found += sorted(p for p in directory.resolve().glob("*.so") if p.is_file())
                    return found
    return found


def deep_files(which=shutil.which) -> dict[str, Path]:
    """arcname -> host file of the deep image's tools: the required ones (LabUnavailable naming the package when
    one is missing), the optional ones the host has."""
    files: dict[str, Path] = {}
    for tool, package in DEEP_REQUIRED.items():
        found = which(tool)
        if found is None:
            raise LabUnavailable(f"the deep image needs `{tool}`: apt-get install -y {package}")
        files["bin/sh" if tool == "dash" else f"bin/{tool}"] = Path(found).resolve()
    for tool in DEEP_OPTIONAL:
        found = which(tool)
        if found is not None:
            files[f"bin/{tool}"] = Path(found).resolve()
    return files


def shared_libraries(binary: Path) -> list[Path]:
    """The absolute library paths `ldd` lists for a binary (the loader included)."""
    out = run(["ldd", str(binary)], check=False).stdout
    libs = []
    for line in out.splitlines():
        if "=>" in line:
            line = line.split("=>", 1)[1]
        match = _LDD_PATH.search(line)
        if match:
            libs.append(Path(match.group(1)))
    return libs


def busybox_applets(busybox: Path) -> list[str]:
    return subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()


def _add_file(tar: tarfile.TarFile, source: Path, arcname: str, mode: int = 0o755) -> None:
    data = source.read_bytes()
    info = tarfile.TarInfo(arcname)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, arcname: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(arcname)
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _add_symlink(tar: tarfile.TarFile, arcname: str, target: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.type, info.linkname = tarfile.SYMTYPE, target
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, arcname: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(arcname)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


FLAVOURS = ("lab", "minimal", "deep")


def build_rootfs_tar(destination: Path, flavour: str = "lab") -> Path:
    """Write a probe image's root filesystem to a tar next to `destination` and return it.

    The tar is rebuilt only when its inputs (the host binaries) change: the file name carries their hash.
    """
    if flavour == "lab":
        busybox, ping, iperf3 = _which("busybox"), _which("ping"), _which("iperf3")
        files = {"bin/busybox": busybox, "bin/ping": ping, "usr/bin/iperf3": iperf3}
    elif flavour == "minimal":
        files = {"bin/sh": _which("dash"), "bin/ping": _which("ping"), "bin/sleep": _which("sleep")}
    elif flavour == "deep":
        files = deep_files()
    else:
        raise ValueError(f"unknown probe image flavour {flavour!r}")
    extensions = [ext for multi in ("xtables-legacy-multi", "xtables-nft-multi") if f"bin/{multi}" in files
                  for ext in xtables_extensions(files[f"bin/{multi}"])] if flavour == "deep" else []
    libs = sorted({lib for binary in (*files.values(), *extensions) for lib in shared_libraries(binary)}
                  | set(extensions))
    digest = hashlib.sha256(flavour.encode())
    for path in (*files.values(), *libs):
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    stem = destination.stem if flavour == "lab" else f"{destination.stem}-{flavour}"
    target = destination.with_name(f"{stem}-{digest.hexdigest()[:12]}.tar")
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f"{stem}-*.tar"):  # built from older host binaries
        if stale.stem.count("-") == stem.count("-") + 1:  # not another flavour's
            stale.unlink()
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for directory in ("bin", "usr", "usr/bin", "lib", "lib64", "etc", "tmp", "proc", "sys", "dev", "root"):
            _add_dir(tar, directory, 0o1777 if directory == "tmp" else 0o755)
        for arcname, source in files.items():
            _add_file(tar, source, arcname)
        if flavour in ("lab", "deep"):
            for applet in busybox_applets(files["bin/busybox"]):
                if applet not in ("busybox", "ping", "ping6") and f"bin/{applet}" not in files:
                    _add_symlink(tar, f"bin/{applet}", "busybox")
        for multi, names in XTABLES_NAMES.items():
            if flavour == "deep" and f"bin/{multi}" in files:
                for name in names:
                    _add_symlink(tar, f"bin/{name}", multi)
        seen_dirs = {"lib", "lib64", "usr", "usr/bin"}
        for lib in libs:  # each library as a real file at the path the loader asks for
            arcname = str(lib).lstrip("/")
            for parent in reversed(Path(arcname).parents[:-1]):
                if str(parent) not in seen_dirs:
                    seen_dirs.add(str(parent))
                    _add_dir(tar, str(parent))
            _add_file(tar, lib.resolve(), arcname)
        _add_text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        _add_text(tar, "etc/group", "root:x:0:\n")
    partial.rename(target)
    return target
