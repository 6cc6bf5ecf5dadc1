"""Repositories mnedc needs, all satisfied from Debian packages (no downloads).

Call `mnedc_dependencies()` from a WORKSPACE. Each repository is declared only
if the calling workspace has not declared one of the same name already, so a
consumer can substitute its own (the way gRPC's grpc_deps() guards each one).
"""

def _shim_rules_cc_impl(ctx):
    # Debian's bazel-rules-cc is too new for Bazel 4.2.3: re-export the native rules.
    ctx.file("WORKSPACE", "workspace(name = \"rules_cc\")\n")
    ctx.file("BUILD", "")
    ctx.file("cc/BUILD", """
package(default_visibility = ["//visibility:public"])
alias(name = "toolchain_type", actual = "@bazel_tools//tools/cpp:toolchain_type")
""")
    ctx.file("cc/defs.bzl", """
cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_library = native.objc_library
""")

_shim_rules_cc = repository_rule(implementation = _shim_rules_cc_impl, local = True)

def _shim_coverage_tools_impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"remote_coverage_tools\")\n")
    ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])
filegroup(name = "coverage_report_generator")
filegroup(name = "lcov_merger")
""")

_shim_coverage_tools = repository_rule(implementation = _shim_coverage_tools_impl, local = True)

# name -> (linkopts, Debian package that provides it). Headers live in
# /usr/include, which the auto-configured toolchain already searches.
_SYSTEM_LIBRARIES = {
    "boost": (["-lpthread"], "libboost1.81-dev"),
    "protobuf": (["-lprotobuf", "-lpthread"], "libprotobuf-dev"),
    "glog": (["-lglog", "-lgflags"], "libgoogle-glog-dev"),
    "gflags": (["-lgflags"], "libgflags-dev"),
    "gtest": (["-lgtest", "-lpthread"], "libgtest-dev"),
    "gtest_main": (["-lgmock", "-lgtest_main", "-lgtest", "-lpthread"], "libgtest-dev"),
    "gmock": (["-lgmock", "-lgtest", "-lpthread"], "libgmock-dev"),
    "openssl": (["-lssl", "-lcrypto"], "libssl-dev"),
    "ldns": (["-lldns"], "libldns-dev"),
    "systemd": (["-lsystemd"], "libsystemd-dev"),
    "yaml_cpp": (["-lyaml-cpp"], "libyaml-cpp-dev"),
}

def _system_libraries_impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, (linkopts, package) in _SYSTEM_LIBRARIES.items():
        lines.append("# From Debian's %s." % package)
        lines.append("cc_library(name = %r, linkopts = %r)" % (name, linkopts))
    ctx.file("BUILD", "\n".join(lines) + "\n")

_system_libraries = repository_rule(implementation = _system_libraries_impl, local = True)

def mnedc_dependencies():
    """Declares every external repository mnedc needs, unless already declared."""
    existing = native.existing_rules()
    if "rules_cc" not in existing:
        _shim_rules_cc(name = "rules_cc")
    if "remote_coverage_tools" not in existing:
        _shim_coverage_tools(name = "remote_coverage_tools")
    if "rules_java" not in existing:
        native.local_repository(name = "rules_java", path = "/usr/share/bazel/rules/java")
    if "platforms" not in existing:
        native.local_repository(name = "platforms", path = "/usr/share/bazel/tools/platforms")
    if "mnedc_system" not in existing:
        _system_libraries(name = "mnedc_system")
