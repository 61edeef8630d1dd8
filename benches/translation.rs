//! Translation benchmarks: the full one-byte translation (`translate_address_with_key`:
//! effective address, ASCE selection, LAP, DAT walk or translation-cache lookup,
//! reference bits, key check) over {region-first, region-second, region-third,
//! segment} x {4K, 1M, 2G where the type allows} x {cache hit, cache miss, cache off}
//! x {no key, key check, fetch-protected}; the walk alone (`dat::walk::walk`, pure, with
//! its trace), the walk as the cache-off path runs it (`dat::walk::walk_referencing`: reference
//! bits, no trace, context given), the cache's address-only hit (`hit-address/`) and
//! the cost of its loop alone (`loop-floor`), and one
//! fragment (`translate_fragment`: context, then the walk + reference bits, or the
//! cache); and the exception paths.
//!
//! The one-fragment and walk benchmarks hand criterion the absolute address, which is
//! what a translation's consumer uses: handing it the whole `Result<Translation, _>`
//! times a store-forwarding stall of copying that 24-byte value (~4 ns here), not
//! the translation.
//!
//! "hit": the same page every iteration with the cache on. "miss": the cache on, a
//! different page each iteration, cycling through 4096 pages (more than the cache
//! holds), so every lookup misses and the walk runs and fills an entry. "off": the cache
//! disabled, the same page every iteration: the uncached walk.
//!
//! Run: `cargo bench --bench translation` (about 4 minutes); filter with a name
//! prefix, e.g. `cargo bench --bench translation -- fragment/`.
use criterion::{Criterion, criterion_group, criterion_main};
use s390_gaccess::dat::builder::entry_address;
use s390_gaccess::dat::walk::{self, WalkContext};
use s390_gaccess::dat::{Asce, DesignationType, FrameSize, TableLevel};
use s390_gaccess::exception::AccessMode;
use s390_gaccess::keys::AccessKey;
use s390_gaccess::translate::{translate_address_with_key, translate_fragment, walk_context};
use s390_gaccess::vcpu::cr0;
use std::hint::black_box;

#[path = "common/mod.rs"]
mod common;
use common::*;

const CACHE_CASES: [&str; 3] = ["hit", "miss", "off"];

/// The virtual address of iteration `i`: the same page for "hit"/"off", the next of
/// `PAGES` pages for "miss".
#[inline(always)]
fn address(g: &Guest, cache: &str, i: &mut u64) -> u64 {
    if cache == "miss" {
        *i = (*i + 1) & (PAGES - 1);
        g.base + (*i << 12) + OFFSET
    } else {
        g.base + OFFSET
    }
}

fn translate_matrix(c: &mut Criterion) {
    for (dt, dt_name) in DTS {
        for &frame in frames(dt) {
            for keys in KeyCase::ALL {
                let mut g = Guest::new(dt, frame, keys);
                for cache in CACHE_CASES {
                    set_cache(&mut g.vcpu, cache != "off");
                    let name = format!(
                        "translate/{dt_name}/{}/{cache}/{}",
                        frame.name(),
                        keys.name()
                    );
                    let key = keys.key();
                    let mut i = 0u64;
                    c.bench_function(&name, |b| {
                        b.iter(|| {
                            let a = address(&g, cache, &mut i);
                            translate_address_with_key(
                                &g.vm,
                                &g.vcpu,
                                black_box(a),
                                0,
                                AccessMode::Fetch,
                                key,
                            )
                        })
                    });
                }
            }
        }
    }
}

fn ctx_of(g: &Guest) -> WalkContext {
    walk_context(&g.vm, &g.vcpu, Asce(g.vcpu.cr[1]), AccessMode::Fetch)
}

/// The pure walk (trace built, no reference bits) and one fragment's translation.
fn walk_and_fragment(c: &mut Criterion) {
    for (dt, dt_name) in DTS {
        for &frame in frames(dt) {
            let mut g = Guest::new(dt, frame, KeyCase::NoKey);
            let ctx = ctx_of(&g);
            c.bench_function(&format!("walk/{dt_name}/{}", frame.name()), |b| {
                b.iter(|| walk::walk(g.vm.storage(), black_box(g.base + OFFSET), &ctx))
            });
            // A cache hit as an access's fragment loop asks it: context given, the
            // absolute address only (`TranslationCache::translate_address`).
            set_cache(&mut g.vcpu, true);
            let _ = g
                .vcpu
                .tlb
                .translate_address(g.vm.storage(), g.base + OFFSET, &ctx);
            if dt == DesignationType::RegionFirst && frame == FrameSize::Size4K {
                // What the harness costs: the hit benches' loop, input and output with
                // one OR in place of the lookup.
                c.bench_function("loop-floor", |b| {
                    b.iter(|| black_box(g.base + OFFSET) | 0x1000)
                });
            }
            c.bench_function(&format!("hit-address/{dt_name}/{}", frame.name()), |b| {
                b.iter(|| {
                    g.vcpu
                        .tlb
                        .translate_address(g.vm.storage(), black_box(g.base + OFFSET), &ctx)
                        .map_or(0, |a| a.0)
                })
            });
            // The walk as the cache-off path runs it: context given, R set, no trace.
            // Like the hit rows, it gives criterion the absolute address alone, as an
            // access consumes a translation: a `Result` kept for `black_box` holds
            // error fields that the loop carries in registers, spilling the walk's.
            c.bench_function(
                &format!("walk-referencing/{dt_name}/{}", frame.name()),
                |b| {
                    b.iter(|| {
                        walk::walk_referencing(g.vm.storage(), black_box(g.base + OFFSET), &ctx)
                            .map_or(0, |t| t.address.0)
                    })
                },
            );
            let asce = ctx.asce;
            for cache in CACHE_CASES {
                set_cache(&mut g.vcpu, cache != "off");
                let mut i = 0u64;
                c.bench_function(
                    &format!("fragment/{dt_name}/{}/{cache}", frame.name()),
                    |b| {
                        b.iter(|| {
                            let a = address(&g, cache, &mut i);
                            translate_fragment(
                                &g.vm,
                                &g.vcpu,
                                asce,
                                black_box(a),
                                AccessMode::Fetch,
                            )
                            .map_or(0, |t| t.address.0)
                        })
                    },
                );
            }
        }
    }
}

/// Program-interruption paths of the one-byte translation (record built).
fn exceptions(c: &mut Criterion) {
    let run = |c: &mut Criterion, name: &str, g: &Guest, va: u64, mode: AccessMode| {
        c.bench_function(&format!("exception/{name}"), |b| {
            b.iter(|| {
                let r = translate_address_with_key(
                    &g.vm,
                    &g.vcpu,
                    black_box(va),
                    0,
                    mode,
                    AccessKey::ZERO,
                );
                debug_assert!(r.is_err());
                r
            })
        });
    };
    let seg = DesignationType::Segment;
    // Invalid PTE (PGM 0x11) and invalid STE (PGM 0x10): the walk reads 2 entries.
    let g = Guest::new(seg, FrameSize::Size4K, KeyCase::NoKey);
    let asce = Asce(g.vcpu.cr[1]);
    let pte = entry_address(g.vm.storage(), asce, g.base + 4096, TableLevel::Page).unwrap();
    g.vm.storage().write_u64(pte, 0x400).unwrap();
    run(
        c,
        "page-translation",
        &g,
        g.base + 4096 + OFFSET,
        AccessMode::Fetch,
    );
    run(
        c,
        "segment-translation",
        &g,
        0x4000_0000 + OFFSET,
        AccessMode::Fetch,
    );
    // ASCE type (0x38): no memory access.
    run(c, "asce-type", &g, 1 << 40, AccessMode::Fetch);
    // Region-first translation: an unmapped region (invalid RFTE, 1 read).
    let rf = Guest::new(
        DesignationType::RegionFirst,
        FrameSize::Size4K,
        KeyCase::NoKey,
    );
    run(
        c,
        "region-first-translation",
        &rf,
        1 << 53,
        AccessMode::Fetch,
    );
    // DAT protection (store to a P=1 page after a 5-entry walk).
    let mut rfp = Guest::new(
        DesignationType::RegionFirst,
        FrameSize::Size4K,
        KeyCase::NoKey,
    );
    let asce = Asce(rfp.vcpu.cr[1]);
    let pte = entry_address(rfp.vm.storage(), asce, rfp.base, TableLevel::Page).unwrap();
    let e = rfp.vm.storage().read_u64(pte).unwrap();
    rfp.vm.storage().write_u64(pte, e | 0x200).unwrap();
    run(
        c,
        "dat-protection",
        &rfp,
        rfp.base + OFFSET,
        AccessMode::Store,
    );
    // Addressing: the ASCE's table lies outside memory.
    let mut far = Guest::new(seg, FrameSize::Size4K, KeyCase::NoKey);
    far.vcpu.cr[1] = Asce::new(16 << 30, seg, 3, 0).0;
    run(c, "addressing", &far, OFFSET, AccessMode::Fetch);
    // Low-address protection: a store to 0 with CR0.35 (no walk).
    rfp.vcpu.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
    rfp.vcpu.psw.mask &= !s390_gaccess::vcpu::Psw::DAT;
    run(c, "low-address", &rfp, 0x10, AccessMode::Store);
    // Key protection: key 2 fetching from an ACC-5 F=1 frame.
    let kp = Guest::new(seg, FrameSize::Size4K, KeyCase::FetchProtected);
    c.bench_function("exception/key-protection", |b| {
        b.iter(|| {
            translate_address_with_key(
                &kp.vm,
                &kp.vcpu,
                black_box(kp.base + OFFSET),
                0,
                AccessMode::Fetch,
                KeyCase::FetchProtected.key(),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = config();
    targets = walk_and_fragment, translate_matrix, exceptions
}
criterion_main!(benches);
