//! The headline measurements of `s390-gaccess bench` (`perf::bench_command`), runnable
//! without the binary: `cargo bench --bench headline` (`-- --json` for JSON).
//!
//! `cargo bench --bench headline -- --op NAME [ITERATIONS]` runs one operation only,
//! for profiling: `valgrind --tool=callgrind target/release/deps/headline-* --op
//! cache-hit-lookup 1000000`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--op") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        let n = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        if !s390_gaccess::perf::run_op(name, n) {
            let names: Vec<_> = s390_gaccess::perf::op_names().collect();
            eprintln!("unknown op {name:?}; one of {names:?}");
            std::process::exit(2);
        }
        return;
    }
    let json = args.iter().any(|a| a == "--json");
    std::process::exit(s390_gaccess::perf::bench_command(json));
}
