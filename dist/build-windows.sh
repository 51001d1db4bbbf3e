#!/usr/bin/env bash
# Builds courier.exe for 64-bit Windows on Debian 12 (bookworm), installing
# what it needs when missing. The last line of stdout is the absolute path of
# the built exe; everything else goes to stderr.
#
# With --lib-tests it builds the library's unit tests for Windows instead
# (run them under Wine: `wine PATH`), and prints that exe's path.
#
# rustup here has only the Linux standard library and cannot fetch another,
# so Debian's compiler builds std for Windows from source (build-std).
#
# Environment:
#   COURIER_WIN_TARGET_DIR  target dir (default ~/.cache/courier-win-target;
#                           never the Linux one: build-std rebuilds std there)
#   COURIER_WIN_PROFILE     cargo profile (default windows-test, see Cargo.toml)
#   COURIER_WIN_TARGET      target triple (default x86_64-win7-windows-gnu:
#                           x86_64-pc-windows-gnu's std imports ProcessPrng
#                           from bcryptprimitives.dll, which Wine 8 lacks, so
#                           its exes cannot start under Wine)
set -euo pipefail
cd "$(dirname "$0")/.."

what=bin
case "${1:-}" in
  --lib-tests) what=lib-tests ;;
  "") ;;
  *) echo "build-windows: unknown argument '$1' (only --lib-tests)" >&2; exit 2 ;;
esac

target_dir="${COURIER_WIN_TARGET_DIR:-$HOME/.cache/courier-win-target}"
profile="${COURIER_WIN_PROFILE:-windows-test}"
triple="${COURIER_WIN_TARGET:-x86_64-win7-windows-gnu}"

# Debian packages: the compiler, cargo and std source that can build std for
# Windows (bookworm-security), the MinGW linker, and Wine to run the result.
missing=()
[ -x /usr/bin/rustc ] || missing+=(rustc-web)
[ -x /usr/bin/cargo ] || missing+=(cargo-web)
[ -d /usr/lib/rustlib/src/rust/library ] || missing+=(rust-web-src)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing+=(gcc-mingw-w64-x86-64-win32)
# wine64 puts its loader in /usr/lib/wine, not in PATH.
[ -x /usr/lib/wine/wine64 ] || missing+=(wine64)
command -v wine >/dev/null 2>&1 || missing+=(wine)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# rustup's cargo and rustc come first in PATH on these machines; they cannot
# build for Windows, so Debian's are named explicitly. build-std is a -Z flag,
# which a stable compiler accepts only with RUSTC_BOOTSTRAP.
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
triple_var=$(echo "$triple" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${triple_var}_LINKER=x86_64-w64-mingw32-gcc"
export CARGO_TARGET_DIR="$target_dir"

# panic_unwind: the server survives a panicking request by catching it.
# Warnings fail the build, as clippy's -D warnings does for Linux (Debian's
# toolchain has no clippy to run on the Windows code); cargo replays them
# on an up-to-date build too.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ "$what" = lib-tests ]; then
  /usr/bin/cargo test --locked --lib --no-run --profile "$profile" \
    -Zbuild-std=std,panic_unwind --target "$triple" 2>&1 | tee "$log" >&2
else
  /usr/bin/cargo build --locked --bin courier --profile "$profile" \
    -Zbuild-std=std,panic_unwind --target "$triple" 2>&1 | tee "$log" >&2
fi
if grep -q '^warning: `courier`' "$log"; then
  echo "build-windows: courier has warnings on Windows (above)" >&2
  exit 1
fi
if [ "$what" = lib-tests ]; then
  # cargo names the test exe after a hash; it says which.
  exe=$(sed -n 's/^ *Executable unittests src\/lib.rs (\(.*\))$/\1/p' "$log" | tail -n 1)
  [ -f "$exe" ] || { echo "build-windows: no unit-test exe in cargo's output" >&2; exit 1; }
  realpath "$exe"
  exit 0
fi

# Cargo names the output folder after the profile, except "dev" (debug).
case "$profile" in
  dev) out=debug ;;
  *) out=$profile ;;
esac
exe="$target_dir/$triple/$out/courier.exe"
[ -f "$exe" ] || { echo "build-windows: $exe: not built" >&2; exit 1; }
realpath "$exe"
