//! A small seccomp-BPF assembler for the policy in `mod.rs`.
//!
//! Written by hand because no library does what the policy needs:
//! seccompiler (the pure-Rust choice) knows no i386 ABI and kills the
//! process on an architecture it was not built for, and libseccomp is a C
//! dependency. The program is a binary search over ranges of syscall
//! numbers that share a verdict, conditional rules in shared blocks, and
//! every jump forward, as BPF requires.

use seccompiler::sock_filter;

/// `struct seccomp_data` offsets (linux/seccomp.h), little endian.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg_low(arg: u8) -> u32 {
    16 + 8 * u32::from(arg)
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// A jump target, bound to a position later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

enum Insn {
    Fixed(sock_filter),
    Ja(Label),
}

/// Instructions with symbolic forward jumps. Conditional jumps only ever
/// skip 0..=255 instructions of straight-line code; far targets are
/// reached with `ja`, whose offset is 32 bits.
#[derive(Default)]
pub struct Asm {
    code: Vec<Insn>,
    bound: Vec<Option<usize>>,
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.bound.push(None);
        Label(self.bound.len() - 1)
    }

    pub fn bind(&mut self, l: Label) {
        self.bound[l.0] = Some(self.code.len());
    }

    fn fixed(&mut self, f: sock_filter) {
        self.code.push(Insn::Fixed(f));
    }

    pub fn load_nr(&mut self) {
        self.fixed(insn(LD_W_ABS, 0, 0, OFF_NR));
    }

    pub fn load_arch(&mut self) {
        self.fixed(insn(LD_W_ABS, 0, 0, OFF_ARCH));
    }

    /// A = low 32 bits of syscall argument `arg`.
    pub fn load_arg(&mut self, arg: u8) {
        self.fixed(insn(LD_W_ABS, 0, 0, off_arg_low(arg)));
    }

    pub fn and(&mut self, mask: u32) {
        self.fixed(insn(ALU_AND_K, 0, 0, mask));
    }

    pub fn ja(&mut self, l: Label) {
        self.code.push(Insn::Ja(l));
    }

    pub fn ret(&mut self, k: u32) {
        self.fixed(insn(RET_K, 0, 0, k));
    }

    /// if A == k goto `l`.
    pub fn jump_if_eq(&mut self, k: u32, l: Label) {
        self.fixed(insn(JEQ_K, 0, 1, k));
        self.ja(l);
    }

    /// if A >= k goto `l`.
    pub fn jump_if_ge(&mut self, k: u32, l: Label) {
        self.fixed(insn(JGE_K, 0, 1, k));
        self.ja(l);
    }

    /// if A & bits != 0 goto `l`.
    pub fn jump_if_any_bit(&mut self, bits: u32, l: Label) {
        self.fixed(insn(JSET_K, 0, 1, bits));
        self.ja(l);
    }

    /// if A is none of `values` goto `l`.
    pub fn jump_if_none_of(&mut self, values: &[u32], l: Label) -> Result<(), String> {
        let n = values.len();
        if n > 200 {
            return Err("too many values in one seccomp condition".into());
        }
        for (i, v) in values.iter().enumerate() {
            // Equal: skip the rest of the list and the jump.
            self.fixed(insn(JEQ_K, (n - i) as u8, 0, *v));
        }
        self.ja(l);
        Ok(())
    }

    /// Dispatch on A (the syscall number) over `entries`, sorted by
    /// number; every other number goes to `otherwise`. Neighbouring numbers
    /// with one target form a range, and the program is a binary search
    /// over the ranges' starts: the default policy has about 60 ranges for
    /// 350 syscalls, so the filter stays short to load and to run.
    pub fn dispatch(&mut self, entries: &[(u32, Label)], otherwise: Label) {
        let mut ranges: Vec<(u32, Label)> = Vec::new();
        let mut next = 0u32;
        let push = |start: u32, l: Label, ranges: &mut Vec<(u32, Label)>| {
            if ranges.last().is_none_or(|(_, last)| *last != l) {
                ranges.push((start, l));
            }
        };
        for (nr, l) in entries {
            if *nr < next {
                continue; // a duplicate number: the first entry decides
            }
            if *nr > next {
                push(next, otherwise, &mut ranges);
            }
            push(*nr, *l, &mut ranges);
            next = nr.saturating_add(1);
        }
        if next != 0 && entries.last().is_some_and(|(nr, _)| *nr != u32::MAX) {
            push(next, otherwise, &mut ranges);
        }
        if ranges.is_empty() {
            ranges.push((0, otherwise));
        }
        self.search(&ranges);
    }

    /// `ranges` is sorted by start and the first starts where A may: jump
    /// to the label of the range A falls in.
    fn search(&mut self, ranges: &[(u32, Label)]) {
        if let [(_, l)] = ranges {
            self.ja(*l);
            return;
        }
        let mid = ranges.len() / 2;
        let right = self.label();
        self.jump_if_ge(ranges[mid].0, right);
        self.search(&ranges[..mid]);
        self.bind(right);
        self.search(&ranges[mid..]);
    }

    /// Resolve the labels into a program.
    pub fn finish(self) -> Result<Vec<sock_filter>, String> {
        if self.code.len() > MAX_INSNS {
            return Err(format!(
                "seccomp filter too long ({} instructions, the kernel takes {MAX_INSNS})",
                self.code.len()
            ));
        }
        let mut out = Vec::with_capacity(self.code.len());
        for (pc, i) in self.code.iter().enumerate() {
            out.push(match i {
                Insn::Fixed(f) => f.clone(),
                Insn::Ja(l) => {
                    let target = self.bound[l.0].ok_or("seccomp: unbound label")?;
                    if target <= pc || target > self.code.len() {
                        return Err("seccomp: a jump that does not go forward".into());
                    }
                    insn(JA, 0, 0, (target - pc - 1) as u32)
                }
            });
        }
        Ok(out)
    }
}

/// Run a program the way the kernel does, for tests: returns the action
/// for a syscall `nr` on `arch` with `args`.
#[cfg(test)]
pub fn interpret(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            o if (16..64).contains(&o) => {
                let a = args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => panic!("bad load offset {off}"),
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog[pc].clone();
        pc += 1;
        match i.code {
            LD_W_ABS => acc = word(i.k),
            ALU_AND_K => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ_K => pc += usize::from(if acc == i.k { i.jt } else { i.jf }),
            JGE_K => pc += usize::from(if acc >= i.k { i.jt } else { i.jf }),
            JSET_K => pc += usize::from(if acc & i.k != 0 { i.jt } else { i.jf }),
            RET_K => return i.k,
            c => panic!("unknown instruction {c:#x}"),
        }
    }
}
