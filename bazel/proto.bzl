"""C++ code generation from .proto with Debian's protoc (no rules_proto download)."""

def mnedc_cc_proto_library(name, src, visibility = None, deps = []):
    """Generates <src>.pb.{h,cc} with /usr/bin/protoc and wraps them in a cc_library.

    protoc runs with -I at the repository root (external/<repo> when mnedc is
    someone else's dependency), so the generated .pb.cc includes
    "mnedc/protocol/x.pb.h", which resolves in either case.
    """
    base = src[:-len(".proto")]
    repo = native.repository_name()
    root = "." if repo == "@" else "external/" + repo[1:]
    native.genrule(
        name = name + "_gen",
        srcs = [src],
        outs = [base + ".pb.h", base + ".pb.cc"],
        cmd = "protoc -I%s --cpp_out=$(GENDIR)/%s $(location %s)" % (root, root, src),
    )
    native.cc_library(
        name = name,
        srcs = [base + ".pb.cc"],
        hdrs = [base + ".pb.h"],
        deps = deps + ["@mnedc_system//:protobuf"],
        visibility = visibility,
    )
