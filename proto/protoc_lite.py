#!/usr/bin/env python3
"""Generates protobuf-lite C++ for .proto files (protoc's `lite` option).

usage: protoc_lite.py OUT_DIR IMPORT_ROOT... -- FILE...

A lite file cannot import a full one, and gogo's and containerd's option
files extend google/protobuf/descriptor.proto, which only the full runtime
has. Those options say how Go code is generated and mean nothing on the wire,
so each FILE is staged without them (imports, file options, field options);
the well-known types it imports are generated here, lite, too. Tags, types
and names are untouched: the messages are the same on the wire.
"""
import os
import re
import subprocess
import sys
import tempfile

GO_OPTION_FILES = ('"gogoproto/gogo.proto"',
                   '"github.com/containerd/containerd/protobuf/plugin/fieldpath.proto"')
GO_OPTION = re.compile(r"\((gogoproto|containerd\.plugin)\.")


def strip_field_options(line):
    """Drops gogo/containerd entries from a `[...]` option list."""
    def keep(match):
        entries = [e for e in match.group(1).split(",") if not GO_OPTION.match(e.strip())]
        return " [" + ",".join(entries).strip() + "]" if entries else ""
    return re.sub(r"\s*\[([^\]]*)\]", keep, line)


def stage(text):
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("import ") and any(f in stripped for f in GO_OPTION_FILES):
            continue
        if stripped.startswith("option ") and GO_OPTION.search(stripped):
            continue
        out.append(strip_field_options(line))
    return "\n".join(out) + "\n"


def find(path, roots):
    for root in roots + ["/usr/include"]:
        if os.path.exists(os.path.join(root, path)):
            return os.path.join(root, path)
    sys.exit(f"protoc_lite: {path} is in none of {roots}")


def main(argv):
    split = argv.index("--")
    out_dir, roots, files = argv[1], argv[2:split], argv[split + 1:]
    with tempfile.TemporaryDirectory() as staging:
        for path in files:
            with open(find(path, roots)) as f:
                text = stage(f.read())
            os.makedirs(os.path.dirname(os.path.join(staging, path)), exist_ok=True)
            with open(os.path.join(staging, path), "w") as f:
                f.write(text)
        subprocess.run(["/usr/bin/protoc", "-I" + staging, "--cpp_out=lite:" + out_dir] + files,
                       check=True)


if __name__ == "__main__":
    main(sys.argv)
