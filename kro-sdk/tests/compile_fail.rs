//! Mistakes in a graph are compile errors at the attribute or field that
//! made them, with kro-core's message.

#[test]
fn graph_mistakes_fail_to_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
