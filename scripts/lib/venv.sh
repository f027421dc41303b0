# Sourced by the scripts that run a tool from PyPI: makes a venv with one
# package pinned to one version, reusing it while that version is installed.
#
#   source "$ROOT/scripts/lib/venv.sh"
#   pinned_venv "$TARGET_DIR/some-venv" some-package 1.2.3

# pinned_venv VENV PACKAGE VERSION: VENV holds PACKAGE==VERSION afterwards.
pinned_venv() {
    local venv="$1" package="$2" version="$3"
    if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
    fi
}
