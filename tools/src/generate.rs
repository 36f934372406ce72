//! Generated programs for `xesvm bench --generate N --seed S`: programs
//! drawn from families of runtime patterns (training steps, decode loops,
//! host offload, pipelines across devices, solvers on GPU-born buffers,
//! out-of-core sweeps, graph traversals, many small allocations, CPU
//! post-processing, atomics, free and reuse), with sizes in bytes as
//! programs allocate them, random repeat counts, device counts and VRAM
//! pressure.
//!
//! Each program is written as a scenario file (scenario.rs) and parsed
//! back: what `--emit DIR` writes is exactly what the bench ran, and
//! `xesvm run DIR/NAME.toml --compare` prints the same figures.
//!
//! The draw is deterministic: splitmix64 seeded from the seed and the
//! program's index, so program i of a seed is the same whatever N.

use std::fmt::Write;
use std::path::Path;

use xesvm::sim::Topology;

use crate::runner::{PolicyKind, Report};
use crate::workload::Workload;

/// The families, in the order `family` numbers them.
pub const FAMILIES: [&str; 11] = [
    "training",
    "decode",
    "offload",
    "pipeline",
    "solver",
    "out-of-core",
    "graph",
    "small-allocs",
    "post-process",
    "atomics",
    "free-reuse",
];

/// splitmix64: small, fast, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next_u64() % xs.len() as u64) as usize]
    }
    /// A size in bytes in [lo, hi], to the kB as programs ask for them
    /// (4000000, 12345000: rarely a page multiple).
    pub fn bytes(&mut self, lo: u64, hi: u64) -> u64 {
        (self.range(lo, hi) / 1000).max(1) * 1000
    }
}

/// One generated program.
#[derive(Clone, Debug)]
pub struct Program {
    pub name: String,
    pub family: &'static str,
    /// What it does, in a line.
    pub what: String,
    /// The program as a scenario file.
    pub toml: String,
}

impl Program {
    /// The program as a workload (the scenario file parsed).
    pub fn workload(&self) -> Result<Workload, String> {
        let mut w = crate::scenario::parse(&self.toml, Path::new(".")).map_err(|e| format!("{}: {e}", self.name))?.workload;
        w.name = self.name.clone();
        Ok(w)
    }
}

enum Acc {
    R,
    W,
    A,
}

impl Acc {
    fn name(&self) -> &'static str {
        match self {
            Acc::R => "read",
            Acc::W => "write",
            Acc::A => "atomic",
        }
    }
}

/// A span of a buffer: the whole of it, or (offset, size) in bytes.
type Part = Option<(u64, u64)>;

/// Writes a scenario file.
struct Builder {
    buffers: String,
    phases: String,
    sizes: Vec<(String, u64)>,
    /// Draws each launch's shape (passes, pattern, compute): a stream of
    /// its own, so the families' sizes and steps are those of earlier
    /// versions of the generator for the same seed.
    shape: Rng,
}

/// The local bandwidth a launch's compute is scaled by (an Arc B580's
/// GDDR6, docs/cost-model.md): compute is drawn as a multiple of one pass
/// over the launch's bytes at this rate, its arithmetic intensity.
const NOMINAL_LOCAL_BANDWIDTH: f64 = 456e9;

impl Builder {
    fn new(shape: Rng) -> Builder {
        Builder { buffers: String::new(), phases: String::new(), sizes: Vec::new(), shape }
    }
    /// An argument's passes and pattern: most kernels stream their data
    /// once or twice; tiled ones re-read it (4 or 8 passes); a fifth touch
    /// a scattered share of it (a frontier, a table lookup).
    fn arg_shape(&mut self) {
        let passes = self.shape.pick(&[1u32, 1, 1, 2, 4, 8]);
        if passes > 1 {
            let _ = writeln!(self.phases, "passes = {passes}");
        }
        if self.shape.chance(20) {
            let touched = self.shape.pick(&[0.02f64, 0.1, 0.25, 0.5]);
            let _ = writeln!(self.phases, "pattern = \"scattered\"\ntouched = {touched}");
        }
    }
    /// Bytes of an argument.
    fn part_bytes(&self, buffer: &str, part: Part) -> u64 {
        part.map_or(self.size(buffer), |p| p.1)
    }
    /// A buffer; `packed`: right after the previous one (an arena).
    fn buffer(&mut self, name: &str, bytes: u64, packed: bool) -> String {
        let _ = write!(self.buffers, "\n[[buffer]]\nname = \"{name}\"\nsize = {bytes}\n");
        if packed && !self.sizes.is_empty() {
            let _ = writeln!(self.buffers, "after = \"{}\"", self.sizes.last().unwrap().0);
        }
        self.sizes.push((name.to_string(), bytes));
        name.to_string()
    }
    fn size(&self, name: &str) -> u64 {
        self.sizes.iter().find(|b| b.0 == name).map_or(0, |b| b.1)
    }
    fn phase(&mut self, name: &str, repeat: u64) {
        let _ = write!(self.phases, "\n[[phase]]\nname = \"{name}\"\n");
        if repeat > 1 {
            let _ = writeln!(self.phases, "repeat = {repeat}");
        }
    }
    fn part(&mut self, part: Part) {
        if let Some((off, size)) = part {
            if off > 0 {
                let _ = writeln!(self.phases, "offset = {off}");
            }
            let _ = writeln!(self.phases, "size = {size}");
        }
    }
    fn gpu(&mut self, device: u32, spans: &[(Acc, &str, Part)]) {
        let (a, b, p) = &spans[0];
        let _ = write!(self.phases, "\n[[phase.step]]\ndo = \"gpu\"\ndevice = {device}\naccess = \"{}\"\nbuffer = \"{b}\"\n", a.name());
        self.part(*p);
        self.arg_shape();
        // Compute: none beyond memory (a copy), memory-bound, balanced, or
        // compute-bound (a GEMM), as a multiple of one pass over its bytes.
        let intensity = self.shape.pick(&[0.0f64, 0.3, 1.0, 3.0]);
        let bytes: u64 = spans.iter().map(|(_, b, p)| self.part_bytes(b, *p)).sum();
        let compute = (intensity * bytes as f64 * 1e9 / NOMINAL_LOCAL_BANDWIDTH) as u64;
        if compute > 0 {
            let _ = writeln!(self.phases, "compute = {compute}");
        }
        for (a, b, p) in &spans[1..] {
            let _ = write!(self.phases, "[[phase.step.span]]\naccess = \"{}\"\nbuffer = \"{b}\"\n", a.name());
            self.part(*p);
            self.arg_shape();
        }
    }
    fn cpu(&mut self, write: bool, buffer: &str, part: Part) {
        let _ = write!(self.phases, "\n[[phase.step]]\ndo = \"cpu\"\naccess = \"{}\"\nbuffer = \"{buffer}\"\n", if write { "write" } else { "read" });
        self.part(part);
    }
    fn free(&mut self, buffer: &str) {
        let _ = write!(self.phases, "\n[[phase.step]]\ndo = \"free\"\nbuffer = \"{buffer}\"\n");
    }
    fn alloc(&mut self, buffer: &str) {
        let _ = write!(self.phases, "\n[[phase.step]]\ndo = \"alloc\"\nbuffer = \"{buffer}\"\n");
    }
}

const MB: u64 = 1_000_000;
const MIB: u64 = 1 << 20;

/// Program `index` of `seed` on `preset`; `vram_mib` fixes the VRAM per
/// tile (0: drawn, 48 to 128 MiB).
pub fn program(seed: u64, index: u32, preset: &str, vram_mib: u64) -> Result<Program, String> {
    let topo = Topology::preset(preset).ok_or_else(|| format!("--generate needs a preset topology, not \"{preset}\""))?;
    let mut r = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED);
    let ndev = topo.devices.len() as u32;
    let family_ix = (r.next_u64() % FAMILIES.len() as u64) as usize;
    let family = FAMILIES[family_ix];
    let vram = if vram_mib > 0 { vram_mib } else { r.pick(&[48u64, 64, 96, 128]) } * MIB;
    // The working set against one tile's VRAM.
    let pressure = r.pick(&[0.25f64, 0.5, 0.8, 1.1, 1.6]);
    let ws = (vram as f64 * pressure) as u64;
    let dev = r.range(0, ndev as u64 - 1) as u32;
    let k = r.range(1, ndev as u64) as u32; // devices a multi-device program uses
    let mut b = Builder::new(Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5A4E));
    // What the runtime knows at a launch: mostly pointers (malloc memory),
    // sometimes allocations (a runtime with a table), sometimes the spans.
    let knows = ["pointer", "pointer", "extent", "span"][(b.shape.next_u64() % 4) as usize];
    let what = match family {
        "training" => {
            let layers = r.range(2, 4);
            let wl: Vec<u64> = (0..layers).map(|_| r.bytes(ws / layers / 4, ws / layers / 2)).collect();
            let al: Vec<u64> = (0..=layers).map(|_| r.bytes(ws / (layers + 1) / 8, ws / (layers + 1) / 3)).collect();
            let ws_: Vec<String> = wl.iter().enumerate().map(|(i, &s)| b.buffer(&format!("w{i}"), s, i > 0)).collect();
            let gs: Vec<String> = wl.iter().enumerate().map(|(i, &s)| b.buffer(&format!("g{i}"), s, i > 0)).collect();
            let acts: Vec<String> = al.iter().enumerate().map(|(i, &s)| b.buffer(&format!("a{i}"), s, i > 0)).collect();
            let cpu_opt = r.chance(40);
            let steps = r.range(2, 5);
            b.phase("init", 1);
            for w in &ws_ {
                b.cpu(true, w, None);
            }
            b.phase("step", steps);
            b.cpu(true, &acts[0], None);
            for l in 0..layers as usize {
                b.gpu(dev, &[(Acc::R, &ws_[l], None), (Acc::R, &acts[l], None), (Acc::W, &acts[l + 1], None)]);
            }
            for l in (0..layers as usize).rev() {
                b.gpu(dev, &[(Acc::R, &ws_[l], None), (Acc::R, &acts[l], None), (Acc::R, &acts[l + 1], None), (Acc::W, &gs[l], None)]);
            }
            for l in 0..layers as usize {
                if cpu_opt {
                    b.cpu(false, &gs[l], None);
                    b.cpu(true, &ws_[l], None);
                } else {
                    b.gpu(dev, &[(Acc::R, &gs[l], None), (Acc::W, &ws_[l], None)]);
                }
            }
            format!(
                "{layers} layers on device {dev}, weights {:.1} MB, activations {:.1} MB, optimizer on {}, {steps} steps",
                wl.iter().sum::<u64>() as f64 / MB as f64,
                al.iter().sum::<u64>() as f64 / MB as f64,
                if cpu_opt { "the CPU" } else { "the GPU" }
            )
        }
        "decode" => {
            let weights = b.buffer("weights", r.bytes(ws / 4, ws / 2), false);
            let tokens = r.range(8, 24);
            let per_token = r.bytes(ws / 4 / tokens, ws / 2 / tokens);
            let kv = b.buffer("kv", per_token * tokens, false);
            let token = b.buffer("token", r.bytes(4000, 64000), false);
            let logits = b.buffer("logits", r.bytes(100_000, 600_000), true);
            b.phase("load", 1);
            b.cpu(true, &weights, None);
            b.phase("decode", 1);
            for t in 0..tokens {
                b.cpu(true, &token, None);
                let mut spans = vec![(Acc::R, weights.as_str(), None), (Acc::R, token.as_str(), None)];
                if t > 0 {
                    spans.push((Acc::R, kv.as_str(), Some((0, t * per_token))));
                }
                spans.push((Acc::W, kv.as_str(), Some((t * per_token, per_token))));
                spans.push((Acc::W, logits.as_str(), None));
                b.gpu(dev, &spans);
                b.cpu(false, &logits, None);
            }
            format!("{tokens} tokens on device {dev}, KV cache growing by {per_token} bytes a token, weights {:.1} MB", b.size(&weights) as f64 / MB as f64)
        }
        "offload" => {
            let input = b.buffer("input", r.bytes(ws / 8, ws / 3), false);
            let state = b.buffer("state", r.bytes(ws / 8, ws / 2), false);
            let result = b.buffer("result", r.bytes(200_000, 4 * MB), r.chance(50));
            let (outer, inner) = (r.range(2, 4), r.range(2, 8));
            for o in 0..outer {
                b.phase(&format!("fill{o}"), 1);
                b.cpu(true, &input, None);
                b.phase(&format!("iterate{o}"), inner);
                b.gpu(dev, &[(Acc::R, &input, None), (Acc::W, &state, None)]);
                b.phase(&format!("result{o}"), 1);
                b.gpu(dev, &[(Acc::R, &state, None), (Acc::W, &result, None)]);
                b.cpu(false, &result, None);
            }
            format!("{outer} rounds: the CPU fills {:.1} MB, device {dev} iterates {inner} times, the CPU reads the result", b.size(&input) as f64 / MB as f64)
        }
        "pipeline" => {
            let stages = r.range(2, (ndev as u64).max(2) + 1) as u32;
            let size = r.bytes(ws / 8, ws / 3);
            let bufs: Vec<String> = (0..=stages).map(|i| b.buffer(&format!("b{i}"), size, false)).collect();
            let rounds = r.range(2, 6);
            b.phase("round", rounds);
            b.cpu(true, &bufs[0], None);
            for s in 0..stages as usize {
                b.gpu(s as u32 % ndev, &[(Acc::R, &bufs[s], None), (Acc::W, &bufs[s + 1], None)]);
            }
            b.cpu(false, &bufs[stages as usize], None);
            format!("{stages} stages (stage i on device i mod {ndev}), {size} bytes handed on, {rounds} rounds")
        }
        "solver" => {
            let a = b.buffer("matrix", r.bytes(ws / 4, ws / 2), false);
            let n = r.bytes(ws / 32, ws / 12);
            let x = b.buffer("x", n, false);
            let rr = b.buffer("r", n, true);
            let p = b.buffer("p", n, true);
            let norm = b.buffer("norm", r.bytes(1000, 8000), true);
            let split = k > 1 && r.chance(50);
            let iters = r.range(3, 10);
            let asz = b.size(&a);
            b.phase("setup", 1);
            b.gpu(dev, &[(Acc::W, &a, None), (Acc::W, &x, None), (Acc::W, &rr, None), (Acc::W, &p, None)]);
            b.phase("iterate", iters);
            if split {
                let half = asz / 2;
                b.gpu(0, &[(Acc::R, &a, Some((0, half))), (Acc::R, &p, None), (Acc::W, &rr, Some((0, n / 2)))]);
                b.gpu(1, &[(Acc::R, &a, Some((half, asz - half))), (Acc::R, &p, None), (Acc::W, &rr, Some((n / 2, n - n / 2)))]);
            } else {
                b.gpu(dev, &[(Acc::R, &a, None), (Acc::R, &p, None), (Acc::W, &rr, None)]);
            }
            b.gpu(dev, &[(Acc::R, &rr, None), (Acc::W, &p, None), (Acc::W, &x, None), (Acc::W, &norm, None)]);
            b.cpu(false, &norm, None);
            b.phase("finish", 1);
            b.cpu(false, &x, None);
            format!(
                "GPU-born matrix {:.1} MB and vectors {n} bytes, {iters} iterations on {}, the CPU reads the norm each time",
                asz as f64 / MB as f64,
                if split { "devices 0 and 1 (rows split)".to_string() } else { format!("device {dev}") }
            )
        }
        "out-of-core" => {
            let size = r.bytes(vram * 5 / 4, vram * 5 / 2);
            let data = b.buffer("data", size, false);
            let acc = b.buffer("acc", r.bytes(100_000, 2 * MB), false);
            let piece = r.bytes(size / 10, size / 4);
            let passes = r.range(1, 3);
            b.phase("fill", 1);
            b.cpu(true, &data, None);
            b.phase("sweep", passes);
            let mut off = 0;
            while off < size {
                let n = piece.min(size - off);
                b.gpu(dev, &[(Acc::R, &data, Some((off, n))), (Acc::W, &acc, None)]);
                off += n;
            }
            b.cpu(false, &acc, None);
            format!("{:.1} MB ({:.1}x VRAM) streamed by device {dev} in {piece}-byte pieces, {passes} passes", size as f64 / MB as f64, size as f64 / vram as f64)
        }
        "graph" => {
            let size = r.bytes(ws, ws * 2);
            let table = b.buffer("table", size, false);
            let frontier = b.buffer("frontier", r.bytes(50_000, 1_000_000), false);
            let steps = r.range(4, 12);
            b.phase("load", 1);
            b.cpu(true, &table, None);
            b.phase("traverse", 1);
            for _ in 0..steps {
                let d = r.range(0, k as u64 - 1) as u32;
                let reads = r.range(6, 20);
                let mut spans: Vec<(Acc, &str, Part)> = vec![(Acc::R, frontier.as_str(), None)];
                for _ in 0..reads {
                    let n = r.range(512, 65536);
                    let off = r.range(0, size - n);
                    spans.push((Acc::R, table.as_str(), Some((off, n))));
                }
                spans.push((Acc::W, frontier.as_str(), None));
                b.gpu(d, &spans);
            }
            b.cpu(false, &frontier, None);
            format!("{steps} steps on {k} device(s), each 6 to 20 scattered reads of 0.5 to 64 KB from a {:.1} MB table", size as f64 / MB as f64)
        }
        "small-allocs" => {
            let m = r.range(16, 48);
            let names: Vec<String> = (0..m).map(|i| {
                let s = r.bytes(1000, 400_000);
                let packed = i > 0 && r.chance(70);
                b.buffer(&format!("s{i}"), s, packed)
            }).collect();
            let rounds = r.range(2, 6);
            b.phase("init", 1);
            for n in &names {
                b.cpu(true, n, None);
            }
            b.phase("work", 1);
            for _ in 0..rounds {
                let d = r.range(0, k as u64 - 1) as u32;
                let reads = r.range(3, 10);
                let mut spans: Vec<(Acc, &str, Part)> = (0..reads).map(|_| (Acc::R, names[r.range(0, m - 1) as usize].as_str(), None)).collect();
                spans.push((Acc::W, names[r.range(0, m - 1) as usize].as_str(), None));
                b.gpu(d, &spans);
                b.cpu(false, &names[r.range(0, m - 1) as usize], None);
            }
            format!("{m} buffers of 1 to 400 kB (most packed in arenas), {rounds} launches on {k} device(s), the CPU reads one after each")
        }
        "post-process" => {
            let out = b.buffer("out", r.bytes(ws / 8, ws / 2), false);
            let weights = b.buffer("weights", r.bytes(ws / 8, ws / 3), false);
            let whole = r.chance(60);
            let rounds = r.range(2, 6);
            let osz = b.size(&out);
            b.phase("load", 1);
            b.cpu(true, &weights, None);
            b.phase("round", rounds);
            b.gpu(dev, &[(Acc::R, &weights, None), (Acc::W, &out, None)]);
            b.cpu(false, &out, if whole { None } else { Some((osz / 3, osz / 3)) });
            format!("device {dev} writes {:.1} MB, the CPU reads {} of it, {rounds} rounds", osz as f64 / MB as f64, if whole { "all" } else { "a third" })
        }
        "atomics" => {
            let input = b.buffer("input", r.bytes(ws / 8, ws / 2), false);
            let hist = b.buffer("hist", r.bytes(4000, 2 * MB), r.chance(30));
            let rounds = r.range(1, 4);
            let isz = b.size(&input);
            b.phase("fill", 1);
            b.cpu(true, &input, None);
            b.phase("round", rounds);
            b.cpu(true, &hist, None);
            for d in 0..k {
                let (off, n) = (isz * d as u64 / k as u64, isz * (d as u64 + 1) / k as u64 - isz * d as u64 / k as u64);
                b.gpu(d, &[(Acc::R, &input, Some((off, n))), (Acc::A, &hist, None)]);
            }
            b.cpu(false, &hist, None);
            format!("{k} device(s) add {:.1} MB of input into a {}-byte histogram atomically, {rounds} rounds", isz as f64 / MB as f64, b.size(&hist))
        }
        _ => {
            // free-reuse
            let weights = b.buffer("weights", r.bytes(ws / 8, ws / 3), false);
            let packed = r.chance(50);
            let scratch = b.buffer("scratch", r.bytes(ws / 8, ws / 2), packed);
            let out = b.buffer("out", r.bytes(100_000, 3 * MB), false);
            let cpu_fill = r.chance(50);
            let rounds = r.range(3, 8);
            b.phase("load", 1);
            b.cpu(true, &weights, None);
            b.phase("loop", rounds);
            if cpu_fill {
                b.cpu(true, &scratch, None);
            } else {
                b.gpu(dev, &[(Acc::R, &weights, None), (Acc::W, &scratch, None)]);
            }
            b.gpu(dev, &[(Acc::R, &scratch, None), (Acc::R, &weights, None), (Acc::W, &out, None)]);
            b.cpu(false, &out, None);
            b.free(&scratch);
            b.alloc(&scratch);
            format!(
                "{rounds} rounds: a {:.1} MB scratch buffer{} filled by the {}, used by device {dev}, freed and allocated again at the same address",
                b.size(&scratch) as f64 / MB as f64,
                if packed { " (packed after the weights)" } else { "" },
                if cpu_fill { "CPU" } else { "GPU" }
            )
        }
    };
    let name = format!("s{seed}-{index:03}-{family}");
    let mut toml = String::new();
    let _ = writeln!(toml, "# {name}: generated by `xesvm bench --generate` (seed {seed}, program {index}), family {family}");
    let _ = writeln!(toml, "# {what}");
    let _ = writeln!(toml, "topology = \"{preset}\"\nvram = {vram}\nknows = \"{knows}\"");
    toml.push_str(&b.buffers);
    toml.push_str(&b.phases);
    Ok(Program { name, family, what, toml })
}

/// Programs 0..n of `seed`.
pub fn generate(n: u32, seed: u64, preset: &str, vram_mib: u64) -> Result<Vec<Program>, String> {
    (0..n).map(|i| program(seed, i, preset, vram_mib)).collect()
}

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;

/// What the bench measured on one program: a report per policy, in
/// `PolicyKind::ALL`'s order.
pub struct Outcome {
    pub program: Program,
    pub reports: Vec<Report>,
}

impl Outcome {
    /// The better of the two baselines (kernel, prefetch), ns; a baseline
    /// whose GPU access failed is left out (0: both failed).
    pub fn baseline_ns(&self) -> u64 {
        self.reports.iter().filter(|r| (r.policy == "kernel" || r.policy == "prefetch") && r.gpu_errors == 0).map(|r| r.simulated_ns).min().unwrap_or(0)
    }
    /// Policies that beat the bound (the bound is then wrong), or lost content, or saw a GPU access fail.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.reports {
            if r.simulated_ns < r.optimum_ns {
                out.push(format!("BOUND VIOLATED: {} {} ns < bound {} ns", r.policy, r.simulated_ns, r.optimum_ns));
            }
            if !r.content_ok {
                out.push(format!("CONTENT LOST: {}", r.policy));
            }
            if r.gpu_errors > 0 {
                out.push(format!("GPU ACCESS FAILED: {} ({})", r.policy, r.gpu_errors));
            }
        }
        out
    }
}

/// Runs every program under every policy.
pub fn run_all(programs: &[Program], mut each: impl FnMut(&Program, PolicyKind)) -> Result<Vec<Outcome>, String> {
    let mut out = Vec::new();
    for p in programs {
        let w = p.workload()?;
        let mut reports = Vec::new();
        for &k in &PolicyKind::ALL {
            each(p, k);
            let mut r = crate::runner::run(&w, k).map_err(|e| format!("{} ({}): {e}", p.name, k.name()))?;
            r.machine = p.family.to_string();
            reports.push(r);
        }
        out.push(Outcome { program: p.clone(), reports });
    }
    Ok(out)
}

/// A run's time over `den`: NaN where a GPU access of the run failed (it
/// did not do the whole program) or `den` is 0.
fn ratio_of(r: &Report, den: u64) -> f64 {
    if r.gpu_errors > 0 {
        f64::NAN
    } else {
        ratio(r.simulated_ns, den)
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

/// The per-program table: each policy's time over the bound, and xesvm's
/// over the better baseline; "failed" where a run's GPU access failed.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let Some(first) = outcomes.first() else { return s };
    let policies: Vec<&str> = first.reports.iter().map(|r| r.policy.as_str()).collect();
    let _ = write!(s, "{:<26} {:>9}", "program", "bound ms");
    for p in &policies {
        let _ = write!(s, " {:>8}", p.strip_prefix("xesvm-").map_or(*p, |_| "x-priv"));
    }
    let _ = writeln!(s, " {:>10}  problems", "xesvm/base");
    for o in outcomes {
        let _ = write!(s, "{:<26} {:>9.3}", o.program.name, first_bound(o) as f64 / 1e6);
        for r in &o.reports {
            if r.gpu_errors > 0 {
                let _ = write!(s, " {:>8}", "failed");
            } else {
                let _ = write!(s, " {:>8.2}", ratio(r.simulated_ns, r.optimum_ns));
            }
        }
        let x = match o.reports.iter().find(|r| r.policy == "xesvm") {
            Some(r) if r.gpu_errors > 0 => "failed".to_string(),
            Some(r) => format!("{:.2}", ratio(r.simulated_ns, o.baseline_ns())),
            None => format!("{:.2}", ratio(0, o.baseline_ns())),
        };
        let line = format!(" {:>10}  {}", x, o.problems().join("; "));
        let _ = writeln!(s, "{}", line.trim_end());
    }
    s
}

fn first_bound(o: &Outcome) -> u64 {
    o.reports.first().map_or(0, |r| r.optimum_ns)
}

/// The summary: per policy the geometric mean over the bound, and against
/// the better of kernel and prefetch its geometric mean, its worst program
/// and how many programs are above 1.02x; then xesvm's worst programs, and
/// every bound violation and content failure.
pub fn summary(outcomes: &[Outcome], header: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{header}");
    let all: Vec<Report> = outcomes.iter().flat_map(|o| o.reports.iter().cloned()).collect();
    let g = crate::report::geomeans(&all);
    let _ = writeln!(
        s,
        "geometric mean of time over the bound: {}{}",
        g.iter().map(|(p, x)| format!("{p} {x:.3}")).collect::<Vec<_>>().join(", "),
        crate::report::left_out_note(&all)
    );
    let _ = writeln!(s, "against the better of kernel and prefetch (per program: time / min(kernel, prefetch)):");
    let _ = writeln!(s, "  {:<17} {:>8} {:>8}  {:<30} {:>7}", "policy", "geomean", "worst", "worst program", ">1.02x");
    for (p, _) in &g {
        let mut logs = 0.0;
        let mut n = 0;
        let mut worst = (0.0f64, "");
        let mut above = 0;
        for o in outcomes {
            let Some(r) = o.reports.iter().find(|r| &r.policy == p) else { continue };
            let x = ratio_of(r, o.baseline_ns());
            if !x.is_finite() || x <= 0.0 {
                continue;
            }
            logs += x.ln();
            n += 1;
            if x > worst.0 {
                worst = (x, &o.program.name);
            }
            above += (x > 1.02) as usize;
        }
        let gm = if n > 0 { (logs / n as f64).exp() } else { f64::NAN };
        let _ = writeln!(s, "  {:<17} {:>8.3} {:>8.3}  {:<30} {:>7}", p, gm, worst.0, worst.1, above);
    }
    let mut xs: Vec<(f64, &Outcome)> = outcomes
        .iter()
        .filter_map(|o| o.reports.iter().find(|r| r.policy == "xesvm").map(|r| (ratio_of(r, o.baseline_ns()), o)))
        .filter(|(x, _)| x.is_finite())
        .collect();
    xs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut fam = Vec::new();
    for f in FAMILIES {
        let v: Vec<f64> = xs.iter().filter(|(_, o)| o.program.family == f).map(|(x, _)| x.ln()).collect();
        if !v.is_empty() {
            fam.push(format!("{f} {:.2} ({})", (v.iter().sum::<f64>() / v.len() as f64).exp(), v.len()));
        }
    }
    let _ = writeln!(s, "xesvm against the better baseline per family, geometric mean (programs): {}", fam.join(", "));
    let _ = writeln!(s, "xesvm's worst programs against the better baseline (engine placements by strategy):");
    for (x, o) in xs.iter().take(10) {
        let ran = o.reports.iter().find(|r| r.policy == "xesvm").map_or_else(|| "no report".to_string(), |r| r.strategies());
        let _ = writeln!(s, "  {x:.3}  {}: {}\n         ran: {ran}", o.program.name, o.program.what);
    }
    let problems: Vec<String> = outcomes.iter().flat_map(|o| o.problems().into_iter().map(move |p| format!("  {}: {p}", o.program.name))).collect();
    if problems.is_empty() {
        let _ = writeln!(s, "bound violations and content failures: none (every policy at or above the bound, every page holds what was last written)");
    } else {
        let _ = writeln!(s, "PROBLEMS ({}):\n{}", problems.len(), problems.join("\n"));
    }
    s
}
