//! Memop benchmarks, with a `memcpy` baseline of each size in the same run: logical
//! read and write through the vCPU ioctl entry point (`memop::vcpu_mem_op`, raw struct
//! and user buffer, DAT on through a segment table with 4 KiB pages), absolute read and
//! write through the VM entry point (`memop::vm_mem_op`), each without and with key
//! checking (SKEY_PROTECTION, key 5 on ACC-5 frames), for 1 B, 8 B, 4 KiB straddling a
//! page boundary and 64 KiB (16 pages). Also: the engine call alone
//! (`access::access_logical`), the `MemOp` builder, the cache switched off, and a
//! failing memop (invalid page, record built).
//!
//! Run: `cargo bench --bench memop` (about 1 minute).
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use s390_gaccess::access::{Buffer, access_logical};
use s390_gaccess::dat::builder::entry_address;
use s390_gaccess::dat::{Asce, DesignationType, FrameSize, TableLevel};
use s390_gaccess::memop::abi::{
    KVM_S390_MEMOP_ABSOLUTE_READ, KVM_S390_MEMOP_ABSOLUTE_WRITE, KVM_S390_MEMOP_F_SKEY_PROTECTION,
    KVM_S390_MEMOP_LOGICAL_READ, KVM_S390_MEMOP_LOGICAL_WRITE,
};
use s390_gaccess::memop::{KvmS390MemOp, MemOp, Profile, UserMemory, vcpu_mem_op, vm_mem_op};
use std::hint::black_box;

#[path = "common/mod.rs"]
mod common;
use common::*;

/// (name, size, offset of the first byte in its page).
const SIZES: [(&str, usize, u64); 4] = [
    ("1B", 1, OFFSET),
    ("8B", 8, OFFSET),
    ("4KiB-straddling", 4096, 0x800),
    ("64KiB", 65536, 0),
];

fn mop(op: u32, gaddr: u64, size: usize, key: bool) -> KvmS390MemOp {
    let mut m = KvmS390MemOp::new(op, gaddr, size as u32);
    if key {
        m.set_flags(KVM_S390_MEMOP_F_SKEY_PROTECTION);
        m.set_key(ACC);
    }
    m
}

fn memcpy(c: &mut Criterion) {
    let mut g = c.benchmark_group("memcpy");
    for (name, size, _) in SIZES {
        let src = vec![0x5au8; size];
        let mut dst = vec![0u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
    }
    g.finish();
}

fn logical(c: &mut Criterion) {
    let mut g = Guest::new(
        DesignationType::Segment,
        FrameSize::Size4K,
        KeyCase::KeyCheck,
    );
    for (op, op_name) in [
        (KVM_S390_MEMOP_LOGICAL_READ, "logical-read"),
        (KVM_S390_MEMOP_LOGICAL_WRITE, "logical-write"),
    ] {
        let mut group = c.benchmark_group(format!("memop/vcpu/{op_name}"));
        for (name, size, off) in SIZES {
            let mut buf = vec![0xa5u8; size];
            group.throughput(Throughput::Bytes(size as u64));
            for key in [false, true] {
                let m = mop(op, g.base + off, size, key);
                let id = BenchmarkId::new(name, if key { "key" } else { "no-key" });
                group.bench_function(id, |b| {
                    b.iter(|| {
                        let mut user = UserMemory::new(&mut buf);
                        let r = vcpu_mem_op(
                            &g.vm,
                            &mut g.vcpu,
                            Profile::Linux70,
                            black_box(&m),
                            &mut user,
                        );
                        debug_assert_eq!(r, 0);
                        r
                    })
                });
            }
        }
        group.finish();
    }
    // The same 8-byte read with the translation cache off.
    set_cache(&mut g.vcpu, false);
    let m = mop(KVM_S390_MEMOP_LOGICAL_READ, g.base + OFFSET, 8, true);
    let mut buf = [0u8; 8];
    c.bench_function("memop/vcpu/logical-read/8B/key/cache-off", |b| {
        b.iter(|| {
            let mut user = UserMemory::new(&mut buf);
            vcpu_mem_op(
                &g.vm,
                &mut g.vcpu,
                Profile::Linux70,
                black_box(&m),
                &mut user,
            )
        })
    });
    set_cache(&mut g.vcpu, true);
    // The engine alone: no validation, no scratch buffer, no user copy.
    let mut group = c.benchmark_group("access/logical-read");
    for (name, size, off) in SIZES {
        let mut buf = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new(name, "key"), |b| {
            b.iter(|| {
                access_logical(
                    &g.vm,
                    &g.vcpu,
                    black_box(g.base + off),
                    0,
                    Buffer::Fetch(&mut buf),
                    KeyCase::KeyCheck.key(),
                )
            })
        });
    }
    group.finish();
    // The typed builder (allocates its buffers per call).
    let op = MemOp::logical_read(g.base + OFFSET, 8).key(ACC);
    c.bench_function("memop/builder/logical-read/8B/key", |b| {
        b.iter(|| black_box(&op).run_vcpu(&g.vm, &mut g.vcpu))
    });
    // A failing read: invalid PTE, PGM 0x11 with the record stored in the vCPU.
    let pte = entry_address(
        g.vm.storage(),
        Asce(g.vcpu.cr[1]),
        g.base + 4096,
        TableLevel::Page,
    )
    .unwrap();
    g.vm.storage().write_u64(pte, 0x400).unwrap();
    let m = mop(KVM_S390_MEMOP_LOGICAL_READ, g.base + 4096 + OFFSET, 8, true);
    c.bench_function("memop/vcpu/logical-read/8B/key/page-translation", |b| {
        b.iter(|| {
            let mut user = UserMemory::new(&mut buf);
            vcpu_mem_op(
                &g.vm,
                &mut g.vcpu,
                Profile::Linux70,
                black_box(&m),
                &mut user,
            )
        })
    });
}

fn absolute(c: &mut Criterion) {
    let g = Guest::new(
        DesignationType::Segment,
        FrameSize::Size4K,
        KeyCase::KeyCheck,
    );
    for (op, op_name) in [
        (KVM_S390_MEMOP_ABSOLUTE_READ, "absolute-read"),
        (KVM_S390_MEMOP_ABSOLUTE_WRITE, "absolute-write"),
    ] {
        let mut group = c.benchmark_group(format!("memop/vm/{op_name}"));
        for (name, size, off) in SIZES {
            let mut buf = vec![0xa5u8; size];
            group.throughput(Throughput::Bytes(size as u64));
            for key in [false, true] {
                let m = mop(op, g.data + off, size, key);
                let id = BenchmarkId::new(name, if key { "key" } else { "no-key" });
                group.bench_function(id, |b| {
                    b.iter(|| {
                        let mut user = UserMemory::new(&mut buf);
                        let r = vm_mem_op(&g.vm, Profile::Linux70, black_box(&m), &mut user);
                        debug_assert_eq!(r, 0);
                        r
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = memcpy, logical, absolute
}
criterion_main!(benches);
