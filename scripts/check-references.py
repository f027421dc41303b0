#!/usr/bin/env python3
"""Fails when a file of the repository points at a document it does not hold.

The repository stands on its own: a comment or a doc that cites a file a
person who clones it cannot open is a dead end. This check reads every file
git tracks and reports
- each Markdown file name (ending in .md) it names that no file of the
  repository answers, and
- each relative link of a Markdown file, `[text](path)`, whose target is
  missing or lies outside the repository.

A name resolves against the folder of the file that names it, the root,
`docs/` and `docs/runbooks/` (lists of runbooks name them bare).

    scripts/check-references.py            # the repository this script is in
    scripts/check-references.py ROOT       # another checkout
"""

import os
import re
import subprocess
import sys

# A file name ending in .md, with an optional relative folder before it.
MD_NAME = re.compile(r"(?<![\w/.:-])((?:\.\.?/)*[\w.-]+(?:/[\w.-]+)*\.md)\b")
# A Markdown link's target, without its #fragment.
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
SEARCHED = ("", "docs", "docs/runbooks")


def tracked_files(root):
    out = subprocess.run(
        ["git", "-C", root, "ls-files", "-z"], capture_output=True, check=True
    ).stdout
    return [name for name in out.decode().split("\0") if name]


def resolves(root, folder, target):
    """Whether `target`, named in a file of `folder`, is a path of the repository."""
    for base in (folder,) + SEARCHED:
        path = os.path.normpath(os.path.join(base, target))
        if path.startswith(".."):
            continue
        if os.path.exists(os.path.join(root, path)):
            return True
    return False


def dangling(root):
    found = []
    for name in tracked_files(root):
        try:
            with open(os.path.join(root, name), encoding="utf-8") as file:
                text = file.read()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        folder = os.path.dirname(name)
        for number, line in enumerate(text.splitlines(), 1):
            targets = set(MD_NAME.findall(line))
            if name.endswith(".md"):
                targets |= {
                    link
                    for link in MD_LINK.findall(line)
                    if "://" not in link and not link.startswith("mailto:")
                }
            for target in sorted(targets):
                if not resolves(root, folder, target):
                    found.append(f"{name}:{number}: {target}")
    return found


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(here)
    found = dangling(root)
    if found:
        print("files named here that the repository does not hold:")
        for line in found:
            print(f"  {line}")
        sys.exit(1)
    print("every file named is in the repository")


if __name__ == "__main__":
    main()
