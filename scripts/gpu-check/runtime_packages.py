"""Prints the Debian runtime packages the GPU check must bring (scripts/gpu-check.sh prepare).

Starting from every ELF file of the build's -dev packages (and, in turn, of each package found),
it follows the NEEDED entries as this machine's loader resolves them, stops at --stop sonames
(replaced by a stand-in), leaves out Open MPI's network-fabric components (UCX, OFI, PSM,
verbs: one node needs shared memory and TCP only) and the --exclude packages, and prints the
packages that own the libraries reached. Standard library only; runs here, where the packages
are installed.
"""
import argparse
import os
import re
import subprocess

DEV_PACKAGES = (
    "libhdf5-dev libopenmpi-dev openmpi-bin libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev "
    "libjpeg62-turbo-dev libssl-dev"
).split()
FABRIC = re.compile(r"(ucx|ofi|psm|openib|verbs|usnic|portals|_cm\.so)")


def run(*command):
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout


def loader_paths():
    paths = {}
    for line in run("ldconfig", "-p").splitlines()[1:]:
        match = re.match(r"\s*(\S+) \(libc6,x86-64.*\) => (\S+)", line)
        if match:
            paths.setdefault(match.group(1), match.group(2))
    return paths


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", run("readelf", "-d", path))


def dpkg_lists():
    """Every installed package's files (dpkg's own lists; one `dpkg -S` per file is too slow)."""
    files_of, owner_of = {}, {}
    info = "/var/lib/dpkg/info"
    for name in os.listdir(info):
        if not name.endswith(".list"):
            continue
        package = name[: -len(".list")].split(":")[0]
        with open(os.path.join(info, name), encoding="utf-8", errors="replace") as f:
            files = f.read().splitlines()
        files_of[package] = files
        for path in files:
            owner_of.setdefault(path, package)
    return files_of, owner_of


FILES_OF, OWNER_OF = dpkg_lists()


def owner(path):
    # Debian 12 merged /lib into /usr/lib: a package may list either spelling.
    for candidate in (path, os.path.realpath(path)):
        for spelling in (candidate, candidate.replace("/usr/lib/", "/lib/", 1)):
            if spelling in OWNER_OF:
                return OWNER_OF[spelling]
    return None


def elf_files(package):
    """The package's ELF files, and what its symlinks point at (a -dev package's libfoo.so)."""
    files = {os.path.realpath(f) for f in FILES_OF.get(package, []) if os.path.isfile(f)}
    return sorted(f for f in files if is_elf(f) and not FABRIC.search(os.path.basename(f)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stop", default="", help="sonames not followed (comma separated)")
    parser.add_argument("--exclude", default="", help="packages left out (space separated)")
    args = parser.parse_args()
    stop = set(filter(None, args.stop.split(",")))
    exclude = set(args.exclude.split())
    paths = loader_paths()
    # Libraries Debian keeps outside the loader's default path (Open MPI, HDF5 serial, PMIx).
    extra_dirs = ["/usr/lib/x86_64-linux-gnu/openmpi/lib", "/usr/lib/x86_64-linux-gnu/hdf5/serial",
                  "/usr/lib/x86_64-linux-gnu/pmix2/lib"]

    def resolve(soname):
        if soname in paths:
            return paths[soname]
        for d in extra_dirs:
            if os.path.exists(os.path.join(d, soname)):
                return os.path.join(d, soname)
        return None

    packages, queue, seen_files, seen_sonames = set(), list(DEV_PACKAGES), set(), set()
    while queue:
        package = queue.pop()
        if package in packages or package in exclude:
            continue
        packages.add(package)
        for path in elf_files(package):
            if path in seen_files:
                continue
            seen_files.add(path)
            queue.append(owner(path) or package)
            for soname in needed(path):
                if soname in stop or soname in seen_sonames:
                    continue
                seen_sonames.add(soname)
                target = resolve(soname)
                if target is None:
                    raise SystemExit(f"{path}: needs {soname}, which this machine does not have")
                found = owner(target)
                if found and found not in packages:
                    queue.append(found)
    print(" ".join(sorted(packages - set(DEV_PACKAGES) - exclude)))


if __name__ == "__main__":
    main()
