"""Fuzz targets: libFuzzer binaries under --config=fuzz (clang, see tools/fuzz),
and in every other build a test that replays the target's corpus (the seeds
and every input that once crashed it), so `bazel test //...` and the ASan suite
keep them honest."""

def mnedc_fuzz_test(name, srcs, deps = [], size = "small"):
    corpus = native.glob(["corpus/%s/**" % name])
    native.cc_test(
        name = name,
        size = size,
        srcs = srcs,
        args = ["fuzz/corpus/" + name],
        data = corpus,
        deps = deps + select({
            "//fuzz:fuzzing": [],
            "//conditions:default": ["//fuzz:replay_main"],
        }),
        linkopts = select({
            "//fuzz:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
