//! Replay a corpus directory through the `memop_raw` harness and print how often each
//! (fd, op, CHECK_ONLY, return value) class occurred:
//! `cargo run --release --example corpus_stats DIR [SEEDS_OUT]`. With `SEEDS_OUT`, the
//! smallest input of each class is copied there (how `fuzz/seeds/memop_raw` was made).
use std::collections::BTreeMap;
use std::path::PathBuf;

/// (VM fd, op, CHECK_ONLY, return value).
type Class = (bool, u32, bool, i32);

fn main() {
    let dir = std::env::args().nth(1).expect("corpus directory");
    let out = std::env::args().nth(2).map(PathBuf::from);
    let mut hist: BTreeMap<Class, (u32, PathBuf, usize)> = BTreeMap::new();
    let mut none = 0;
    let mut n = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    for p in paths {
        let data = std::fs::read(&p).expect("file");
        n += 1;
        match s390_gaccess_fuzz::memop_raw::run(&data) {
            Some(s) => {
                let class = (s.on_vm, s.op.min(8), s.flags & 1 != 0, s.ret);
                let e = hist.entry(class).or_insert((0, p.clone(), data.len()));
                e.0 += 1;
                if data.len() < e.2 {
                    (e.1, e.2) = (p, data.len());
                }
            }
            None => none += 1,
        }
    }
    println!("{n} inputs, {none} without a guest, {} classes", hist.len());
    for ((vm, op, check, ret), (c, p, _)) in &hist {
        println!(
            "{} op {op} check_only={check} ret {ret:#x}: {c}",
            if *vm { "vm  " } else { "vcpu" }
        );
        if let Some(out) = &out {
            std::fs::create_dir_all(out).expect("seeds dir");
            let name = format!(
                "{}-op{op}-{}-ret{}",
                if *vm { "vm" } else { "vcpu" },
                if *check { "check" } else { "real" },
                if *ret < 0 {
                    format!("m{}", -ret)
                } else {
                    format!("{ret:x}")
                }
            );
            std::fs::copy(p, out.join(name)).expect("copy");
        }
    }
}
