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

    # Outputs land in this package's output directory under their import path
    # (lite ones in a folder of their own: the same headers, other code).
    prefix = ctx.attr.out_dir + "/" if ctx.attr.out_dir else ""
    out_root = ctx.bin_dir.path + "/" + ctx.label.package + "/" + prefix
    stems = [_import_path(f)[:-len(".proto")] for f in srcs] + [
        p[:-len(".proto")]
        for p in ctx.attr.well_known
    ]
    outs = [ctx.actions.declare_file(prefix + stem + s) for stem in stems for s in suffixes]
    if ctx.attr.lite:
        args = ctx.actions.args()
        args.add(out_root)
        args.add_all(_import_roots(all_protos))
        args.add("--")
        args.add_all([_import_path(f) for f in srcs] + ctx.attr.well_known)
        ctx.actions.run(
            inputs = all_protos,
            outputs = outs,
            executable = ctx.executable._protoc_lite,
            arguments = [args],
            mnemonic = "ProtocCppLite",
            progress_message = "Generating lite C++ from %d .proto files for %s" % (len(stems), ctx.label),
        )
        return _outputs(outs)
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
    return _outputs(outs)

def _outputs(outs):
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
        "lite": attr.bool(default = False, doc = "protobuf-lite messages (protoc_lite.py)"),
        "out_dir": attr.string(doc = "folder of the package the outputs go in"),
        "well_known": attr.string_list(doc = "google/protobuf/*.proto files to generate too"),
        "_protoc_lite": attr.label(
            default = ":protoc_lite.py",
            allow_single_file = True,
            executable = True,
            cfg = "exec",
        ),
    },
)

def proto_cc_library(name, srcs, proto_deps = [], deps = [], grpc = False, lite = False, well_known = [], copts = [], **kwargs):
    """A cc_library of the C++ generated from `srcs`, included by import path.

    With `lite`, the messages of `srcs` and of the `well_known` types they use
    are generated for protobuf-lite, in a folder named `name`.
    """
    out_dir = name if lite else ""
    proto_cc_gen(
        name = name + "_gen",
        srcs = srcs,
        deps = proto_deps,
        grpc = grpc,
        lite = lite,
        out_dir = out_dir,
        well_known = well_known,
    )
    for group in ["hdrs", "srcs"]:
        native.filegroup(name = name + "_" + group, srcs = [":" + name + "_gen"], output_group = group)
    native.cc_library(
        name = name,
        srcs = [":" + name + "_srcs"],
        hdrs = [":" + name + "_hdrs"],
        includes = [out_dir or "."],
        copts = ["-Wno-unused-parameter"] + copts,
        deps = deps,
        **kwargs
    )
