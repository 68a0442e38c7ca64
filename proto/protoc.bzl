"""Generates C++ from .proto files with Debian's protoc and grpc_cpp_plugin.

Bazel 4's own proto rules need a protobuf source repository; Berth builds
against the system's protoc and libraries instead.
"""

def _import_path(f):
    # A file's path as `import` statements name it: relative to its repository.
    root = f.owner.workspace_root
    return f.path[len(root) + 1:] if root else f.path

def _import_roots(files):
    roots = {}
    for f in files:
        root = f.owner.workspace_root or "."
        roots[root] = True
        roots[f.root.path + "/" + root if f.root.path else root] = True
    return roots.keys()

def _proto_cc_gen_impl(ctx):
    srcs = ctx.files.srcs
    all_protos = srcs + ctx.files.deps
    suffixes = [".pb.h", ".pb.cc"]
    if ctx.attr.grpc:
        suffixes += [".grpc.pb.h", ".grpc.pb.cc"]
    outs = []
    for f in srcs:
        stem = _import_path(f)[:-len(".proto")]
        outs += [ctx.actions.declare_file(stem + s) for s in suffixes]

    # Outputs land in this package's output directory under their import path.
    out_root = ctx.bin_dir.path + "/" + ctx.label.package
    args = ctx.actions.args()
    args.add_all(_import_roots(all_protos), format_each = "-I%s")
    args.add("--cpp_out=" + out_root)
    if ctx.attr.grpc:
        args.add("--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin")
        args.add("--grpc_out=" + out_root)
    args.add_all([_import_path(f) for f in srcs])
    ctx.actions.run(
        inputs = all_protos,
        outputs = outs,
        executable = "/usr/bin/protoc",
        arguments = [args],
        mnemonic = "ProtocCpp",
        progress_message = "Generating C++ from %d .proto files for %s" % (len(srcs), ctx.label),
    )
    return [
        DefaultInfo(files = depset(outs)),
        OutputGroupInfo(
            hdrs = depset([f for f in outs if f.path.endswith(".h")]),
            srcs = depset([f for f in outs if f.path.endswith(".cc")]),
        ),
    ]

proto_cc_gen = rule(
    implementation = _proto_cc_gen_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = [".proto"], doc = "files to generate C++ for"),
        "deps": attr.label_list(allow_files = [".proto"], doc = "files they import"),
        "grpc": attr.bool(default = False, doc = "also generate gRPC service stubs"),
    },
)

def proto_cc_library(name, srcs, proto_deps = [], deps = [], grpc = False, **kwargs):
    """A cc_library of the C++ generated from `srcs`, included by import path."""
    proto_cc_gen(name = name + "_gen", srcs = srcs, deps = proto_deps, grpc = grpc)
    for group in ["hdrs", "srcs"]:
        native.filegroup(name = name + "_" + group, srcs = [":" + name + "_gen"], output_group = group)
    native.cc_library(
        name = name,
        srcs = [":" + name + "_srcs"],
        hdrs = [":" + name + "_hdrs"],
        includes = ["."],
        copts = ["-Wno-unused-parameter"],
        deps = deps,
        **kwargs
    )
