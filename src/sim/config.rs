//! The simulated machine's description: devices, tiles, VRAM, links between
//! devices, the kernel version whose behaviour to model, and the cost model
//! (cost-model.md). Built from a preset name or a topology file.
//!
//! # Topology file format
//!
//! TOML, read with `toml_edit`'s parser: top-level keys, one `[costs]`
//! table, and `[[device]]` / `[[link]]` arrays of tables. Sizes are integers
//! (bytes) or strings with a unit ("16 GiB", "512 MiB"). Every error names
//! the line (from toml_edit's spans) and, past the syntax, the field.
//!
//! ```toml
//! kernel = "7.0"              # "6.18", "7.0" or "7.1"
//! system_memory = "256 GiB"
//!
//! [[device]]                  # repeated per device, in index order
//! name = "gpu0"
//! tiles = 1                   # 1 or 2
//! vram_per_tile = "16 GiB"    # 0 or integrated = true for no VRAM
//! integrated = false
//! device_atomics_on_smem = false
//! need_64k = false            # XE_VRAM_FLAGS_NEED64K
//! page_faults = true          # false: no USM, so no SVM
//! needs_scratch = true        # Xe2: SCRATCH_PAGE allowed with FAULT_MODE
//!
//! [[link]]
//! devices = [0, 1]
//! kind = "p2p"                # "p2p", "fabric" or "none"
//! bandwidth_gbps = 20         # per direction; default by kind
//! atomics = false             # whether the link carries atomics
//!
//! [costs]                     # any field of Costs, in the units of its name
//! fault_service_us = 20
//! ```

use std::fmt;

use crate::errno::Errno;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Which kernel's SVM behaviour the simulated driver reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelVersion {
    /// 6.18/6.19: madvise exists, `region_instance` is pad, no multi-device
    /// pagemaps (a positive devmem_fd behaves like system), no retry-once.
    V6_18,
    /// 7.0: multi-device madvise, ENOLINK, owner groups, scan_mm,
    /// evict-and-retry-once under the migrate rwsem, EXEC_QUEUE_SET_PROPERTY,
    /// the NO_COMPRESSION_HINT config flag.
    V7_0,
    /// 7.1: as 7.0, plus VM_CREATE NO_VM_OVERCOMMIT, VM_BIND DECOMPRESS,
    /// purgeable-state madvise, VM_GET_PROPERTY, and their config flags
    /// (xe-uapi.md §7). Earlier releases answer those bits EINVAL.
    V7_1,
}

impl KernelVersion {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "6.18" | "6.19" => Some(KernelVersion::V6_18),
            "7.0" | "7" => Some(KernelVersion::V7_0),
            "7.1" => Some(KernelVersion::V7_1),
            _ => None,
        }
    }
    pub fn multi_device(self) -> bool {
        self >= KernelVersion::V7_0
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelVersion::V6_18 => "6.18",
            KernelVersion::V7_0 => "7.0",
            KernelVersion::V7_1 => "7.1",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    None,
    /// PCIe peer-to-peer through a switch.
    PcieP2p,
    /// A fast fabric (Xe Link).
    Fabric,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSpec {
    pub name: String,
    pub tiles: u16,
    /// Bytes of VRAM per tile; 0 for an integrated GPU.
    pub vram_per_tile: u64,
    pub integrated: bool,
    pub device_atomics_on_smem: bool,
    pub need_64k: bool,
    /// Recoverable page faults (USM): without them there is no SVM
    /// (HAS_CPU_ADDR_MIRROR clear, FAULT_MODE VMs refused).
    pub page_faults: bool,
    /// PCI device id reported by the CONFIG query.
    pub device_id: u16,
    /// The platform needs scratch pages even in fault mode (Xe2 and later:
    /// LNL, BMG, PTL; `xe->info.needs_scratch`, not PVC), so VM_CREATE takes
    /// SCRATCH_PAGE with FAULT_MODE.
    pub needs_scratch: bool,
}

impl DeviceSpec {
    pub fn discrete(name: &str, tiles: u16, vram_per_tile: u64) -> Self {
        DeviceSpec {
            name: name.into(),
            tiles,
            vram_per_tile,
            integrated: false,
            device_atomics_on_smem: false,
            need_64k: false,
            page_faults: true,
            device_id: 0xe20b,
            needs_scratch: true,
        }
    }
    pub fn has_vram(&self) -> bool {
        !self.integrated && self.vram_per_tile > 0
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinkSpec {
    pub a: u32,
    pub b: u32,
    pub kind: LinkKind,
    /// Bytes per second, per direction.
    pub bandwidth: f64,
    pub atomics: bool,
}

/// The cost model (cost-model.md). Times in nanoseconds, bandwidths in bytes/s.
#[derive(Clone, Debug, PartialEq)]
pub struct Costs {
    /// GPU page fault service without the copy (irq, worker, get_pages, bind).
    pub fault_service_ns: u64,
    /// Copy submission (GuC) per migration.
    pub copy_submit_ns: u64,
    /// Fixed part of one chunk copy (fit: 19 us + size / bandwidth).
    pub copy_fixed_ns: u64,
    /// CPU work per 4 KiB page when device huge pages are off.
    pub per_page_cpu_ns: u64,
    /// Whether migrations use 2 MiB device folios (no per-page CPU work).
    pub device_huge_pages: bool,
    pub tlb_invalidation_ns: u64,
    /// An ioctl that does no GPU work (madvise, query).
    pub ioctl_ns: u64,
    /// CPU fault on a device page, without the copy.
    pub cpu_fault_ns: u64,
    /// Driver-managed migration host-to-device and device-to-host.
    pub h2d_bandwidth: f64,
    pub d2h_bandwidth: f64,
    /// Default per-direction bandwidth of PCIe P2P and fabric links.
    pub p2p_bandwidth: f64,
    pub fabric_bandwidth: f64,
    /// Clearing freshly allocated VRAM on the GPU (first touch of
    /// never-populated pages: nothing to copy, the pages are cleared).
    pub clear_bandwidth: f64,
    /// Atomic-fault timeslice (`atomic_svm_timeslice_ms`).
    pub atomic_timeslice_ns: u64,
    /// One read of the process's page table (a PAGEMAP_SCAN or a pread of
    /// /proc/self/pagemap): the syscall, the mm lock and the walk's setup.
    pub pagemap_call_ns: u64,
    /// Walking one 4 KiB page of it with PAGEMAP_SCAN, and reading (and
    /// decoding) its entry with pread (observation.md §4).
    pub pagemap_scan_page_ns: u64,
    pub pagemap_read_page_ns: u64,
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            fault_service_ns: 20_000,
            copy_submit_ns: 30_000,
            copy_fixed_ns: 19_000,
            per_page_cpu_ns: 1_400,
            device_huge_pages: true,
            tlb_invalidation_ns: 40_000,
            ioctl_ns: 2_000,
            cpu_fault_ns: 20_000,
            h2d_bandwidth: 46e9,
            d2h_bandwidth: 15e9,
            p2p_bandwidth: 20e9,
            fabric_bandwidth: 22e9,
            // [D] cost-model.md: about half of Arc B580's 456 GB/s GDDR6.
            clear_bandwidth: 200e9,
            atomic_timeslice_ns: 5_000_000,
            // [M] `xesvm-pagemap-bench` on this project's 2-core Linux 6.18
            // machines: a one-page read costs 0.9-1.2 us (5-6x a rejected
            // ioctl), 2 MiB 6-8.5 us with PAGEMAP_SCAN (12-17 ns per page,
            // observation.md §4 says 16) and 19-22 us with pread (37-43 ns
            // per page with decoding; observation.md §4 says 21 undecoded).
            pagemap_call_ns: 900,
            pagemap_scan_page_ns: 16,
            pagemap_read_page_ns: 40,
        }
    }
}

impl Costs {
    /// Time to move `bytes` over a link of `bandwidth` bytes/s, as one migration.
    pub fn copy_ns(&self, bytes: u64, bandwidth: f64) -> u64 {
        let pages = if self.device_huge_pages { 0 } else { bytes / (4 * KIB) };
        self.copy_submit_ns + self.copy_fixed_ns + transfer_ns(bytes, bandwidth) + pages * self.per_page_cpu_ns
    }

    /// Time to clear `bytes` of freshly allocated VRAM, as one submission
    /// (cost-model.md, "GPU first touch of never-populated pages").
    pub fn clear_ns(&self, bytes: u64) -> u64 {
        self.copy_submit_ns + transfer_ns(bytes, self.clear_bandwidth)
    }
}

/// `bytes` at `bandwidth` bytes/s in whole nanoseconds, rounded up: every
/// piece the clock charges is at least its exact time, so a bound that sums
/// exact times stays below the clock however a run splits the bytes.
pub fn transfer_ns(bytes: u64, bandwidth: f64) -> u64 {
    (bytes as f64 / bandwidth * 1e9).ceil() as u64
}

/// A whole simulated machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    pub kernel: KernelVersion,
    pub system_memory: u64,
    pub devices: Vec<DeviceSpec>,
    pub links: Vec<LinkSpec>,
    pub costs: Costs,
}

/// The preset names `Topology::preset` knows, with one line each.
pub const PRESETS: &[(&str, &str)] = &[
    ("dgpu", "one discrete GPU, 1 tile, 16 GiB VRAM"),
    ("2dgpu-p2p", "two discrete GPUs (16 GiB each) with PCIe P2P between them"),
    ("2dgpu-nolink", "two discrete GPUs (16 GiB each) without any link"),
    ("4dgpu-p2p", "four discrete GPUs (16 GiB each), PCIe P2P all-to-all"),
    ("max-node", "Data Center GPU Max node: 6 devices x 2 tiles x 64 GiB, all-to-all Xe Link fabric"),
    ("igpu", "one integrated GPU (no VRAM)"),
];

impl Topology {
    fn new(devices: Vec<DeviceSpec>) -> Self {
        Topology { kernel: KernelVersion::V7_0, system_memory: 512 * GIB, devices, links: Vec::new(), costs: Costs::default() }
    }

    fn link_all(&mut self, kind: LinkKind, atomics: bool) {
        let bw = match kind {
            LinkKind::Fabric => self.costs.fabric_bandwidth,
            _ => self.costs.p2p_bandwidth,
        };
        let n = self.devices.len() as u32;
        for a in 0..n {
            for b in a + 1..n {
                self.links.push(LinkSpec { a, b, kind, bandwidth: bw, atomics });
            }
        }
    }

    /// One of [`PRESETS`].
    pub fn preset(name: &str) -> Option<Topology> {
        let d = |i: usize, tiles, vram| DeviceSpec::discrete(&format!("gpu{i}"), tiles, vram);
        Some(match name {
            "dgpu" => Topology::new(vec![d(0, 1, 16 * GIB)]),
            "2dgpu-p2p" => {
                let mut t = Topology::new(vec![d(0, 1, 16 * GIB), d(1, 1, 16 * GIB)]);
                t.link_all(LinkKind::PcieP2p, false);
                t
            }
            "2dgpu-nolink" => Topology::new(vec![d(0, 1, 16 * GIB), d(1, 1, 16 * GIB)]),
            "4dgpu-p2p" => {
                let mut t = Topology::new((0..4).map(|i| d(i, 1, 16 * GIB)).collect());
                t.link_all(LinkKind::PcieP2p, false);
                t
            }
            "max-node" => {
                let mut t = Topology::new((0..6).map(|i| d(i, 2, 64 * GIB)).collect());
                for dev in &mut t.devices {
                    dev.device_id = 0x0bd5;
                    // pvc_desc in xe_pci.c has no needs_scratch (only LNL,
                    // BMG and PTL set it): SCRATCH_PAGE | FAULT_MODE is EINVAL.
                    dev.needs_scratch = false;
                }
                t.system_memory = 1024 * GIB;
                t.link_all(LinkKind::Fabric, true);
                t
            }
            "igpu" => {
                let mut dev = DeviceSpec::discrete("igpu0", 1, 0);
                dev.integrated = true;
                dev.device_atomics_on_smem = true;
                dev.device_id = 0x64a0;
                Topology::new(vec![dev])
            }
            _ => return None,
        })
    }

    /// The link between two distinct devices, if any (kind `None` counts as none).
    pub fn link(&self, a: u32, b: u32) -> Option<&LinkSpec> {
        self.links
            .iter()
            .find(|l| l.kind != LinkKind::None && ((l.a == a && l.b == b) || (l.a == b && l.b == a)))
    }

    /// Interconnect (pagemap owner) groups as `drm_pagemap_acquire_owner`
    /// forms them: devices in index order join the first group with every
    /// member of which they have a link; 6.18 has no multi-device pagemaps,
    /// so each device is its own group there (kernel-model §1, §11.2). A
    /// GPU reaches a peer's VRAM, and pages move VRAM to VRAM, only inside
    /// a group.
    pub fn owner_groups(&self) -> Vec<u32> {
        let n = self.devices.len();
        if !self.kernel.multi_device() {
            return (0..n as u32).collect();
        }
        let mut groups: Vec<Vec<u32>> = Vec::new();
        let mut owner = vec![0; n];
        for d in 0..n as u32 {
            match groups.iter().position(|g| g.iter().all(|&m| self.link(d, m).is_some())) {
                Some(i) => {
                    groups[i].push(d);
                    owner[d as usize] = i as u32;
                }
                None => {
                    owner[d as usize] = groups.len() as u32;
                    groups.push(vec![d]);
                }
            }
        }
        owner
    }

    /// Checks the description: at least one device, 1-2 tiles, links between
    /// existing distinct devices, positive bandwidths.
    pub fn validate(&self) -> Result<(), String> {
        if self.devices.is_empty() {
            return Err("a topology needs at least one [[device]]".into());
        }
        if self.devices.len() > 32 {
            return Err("at most 32 devices are supported".into());
        }
        for (i, d) in self.devices.iter().enumerate() {
            if !(1..=2).contains(&d.tiles) {
                return Err(format!("device {i} ({}): tiles must be 1 or 2", d.name));
            }
            if !d.integrated && d.vram_per_tile != 0 && d.vram_per_tile < 2 * MIB {
                return Err(format!("device {i} ({}): vram_per_tile below 2 MiB", d.name));
            }
        }
        for l in &self.links {
            if l.a == l.b || l.a as usize >= self.devices.len() || l.b as usize >= self.devices.len() {
                return Err(format!("link {}-{}: needs two distinct existing devices", l.a, l.b));
            }
            if l.kind != LinkKind::None && (l.bandwidth.is_nan() || l.bandwidth <= 0.0) {
                return Err(format!("link {}-{}: bandwidth must be positive", l.a, l.b));
            }
        }
        Ok(())
    }

    /// Parses a topology file (format in the module doc).
    pub fn parse(text: &str) -> Result<Topology, ParseError> {
        parse_topology(text)
    }
}

/// A topology file error, with the 1-based line it was found on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl From<ParseError> for Errno {
    fn from(_: ParseError) -> Errno {
        Errno::EINVAL
    }
}

// ---------------------------------------------------------------------------
// Reading the file: toml_edit parses, this walks what it found.

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Str(_) => "a string",
            Value::Array(_) => "an array",
        }
    }
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

/// One of toml_edit's values as the topology reader takes it.
fn value_of(v: &toml_edit::Value, line: usize) -> Result<Value, ParseError> {
    use toml_edit::Value as T;
    Ok(match v {
        T::Integer(i) => Value::Int(*i.value()),
        T::Float(f) => Value::Float(*f.value()),
        T::Boolean(b) => Value::Bool(*b.value()),
        T::String(s) => Value::Str(s.value().clone()),
        T::Array(a) => Value::Array(a.iter().map(|x| value_of(x, line)).collect::<Result<_, _>>()?),
        T::Datetime(_) | T::InlineTable(_) => {
            return Err(err(line, "cannot read a date or an inline table here (expected a number, boolean, \"string\" or [array])"))
        }
    })
}

/// Parses "16 GiB", "512MiB", "4096" into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.replace('_', "").parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => KIB,
        "MiB" | "M" => MIB,
        "GiB" | "G" => GIB,
        "TiB" | "T" => GIB * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

struct Field<'a> {
    table: &'a str,
    key: String,
    value: Value,
    line: usize,
}

impl Field<'_> {
    fn name(&self) -> String {
        if self.table.is_empty() {
            self.key.clone()
        } else {
            format!("{}.{}", self.table, self.key)
        }
    }
    fn wrong(&self, expected: &str) -> ParseError {
        err(self.line, format!("field `{}`: expected {expected}, found {}", self.name(), self.value.kind()))
    }
    fn int(&self) -> Result<i64, ParseError> {
        match self.value {
            Value::Int(i) => Ok(i),
            _ => Err(self.wrong("an integer")),
        }
    }
    fn uint(&self, max: u64) -> Result<u64, ParseError> {
        let i = self.int()?;
        if i < 0 || i as u64 > max {
            return Err(err(self.line, format!("field `{}`: {i} is out of range 0..={max}", self.name())));
        }
        Ok(i as u64)
    }
    fn float(&self) -> Result<f64, ParseError> {
        match self.value {
            Value::Int(i) => Ok(i as f64),
            Value::Float(f) => Ok(f),
            _ => Err(self.wrong("a number")),
        }
    }
    fn boolean(&self) -> Result<bool, ParseError> {
        match self.value {
            Value::Bool(b) => Ok(b),
            _ => Err(self.wrong("true or false")),
        }
    }
    fn string(&self) -> Result<&str, ParseError> {
        match &self.value {
            Value::Str(s) => Ok(s),
            _ => Err(self.wrong("a string")),
        }
    }
    fn size(&self) -> Result<u64, ParseError> {
        match &self.value {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            Value::Str(s) => parse_size(s)
                .ok_or_else(|| err(self.line, format!("field `{}`: cannot read size \"{s}\" (e.g. \"16 GiB\")", self.name()))),
            _ => Err(self.wrong("a size (bytes, or a string like \"16 GiB\")")),
        }
    }
}

/// The 1-based line a byte offset of `text` is on (0: no span).
fn line_at(text: &str, span: Option<std::ops::Range<usize>>) -> usize {
    span.map_or(0, |r| text[..r.start.min(text.len())].matches('\n').count() + 1)
}

/// The file's fields in document order, as (table, key, value, line); a
/// table's header line goes with an empty key (toml_edit parses the TOML,
/// this only walks what it found and keeps each line for the messages).
fn fields(text: &str) -> Result<Vec<(String, String, Option<Value>, usize)>, ParseError> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| err(line_at(text, e.span()), e.message().trim().to_string()))?;
    let mut out = Vec::new();
    let push_table = |name: &str, t: &toml_edit::Table, header: usize, out: &mut Vec<_>| -> Result<(), ParseError> {
        out.push((name.to_string(), String::new(), None, header));
        for (k, item) in t.iter() {
            let line = t.get_key_value(k).and_then(|(key, _)| key.span()).map_or(header, |s| line_at(text, Some(s)));
            match item {
                toml_edit::Item::Value(v) => out.push((name.to_string(), k.to_string(), Some(value_of(v, line)?), line)),
                _ => return Err(err(line, format!("unexpected table `{name}.{k}`"))),
            }
        }
        Ok(())
    };
    let root = doc.as_table();
    // Plain keys come before any table in TOML: take them first.
    for (k, item) in root.iter() {
        if let toml_edit::Item::Value(v) = item {
            let line = root.get_key_value(k).and_then(|(key, _)| key.span()).map_or(0, |s| line_at(text, Some(s)));
            out.push((String::new(), k.to_string(), Some(value_of(v, line)?), line));
        }
    }
    for (k, item) in root.iter() {
        let line = root.get_key_value(k).and_then(|(key, _)| key.span()).map_or(0, |s| line_at(text, Some(s)));
        match item {
            toml_edit::Item::Value(_) | toml_edit::Item::None => {}
            toml_edit::Item::Table(t) => push_table(k, t, line_at(text, t.span()).max(line), &mut out)?,
            toml_edit::Item::ArrayOfTables(a) => {
                for t in a.iter() {
                    push_table(k, t, line_at(text, t.span()).max(line), &mut out)?;
                }
            }
        }
    }
    Ok(out)
}

/// Whether `[[name]]` appears (device and link sections are arrays of tables).
fn text_has_array_table(text: &str, name: &str) -> bool {
    text.lines().any(|l| l.trim().strip_prefix("[[").and_then(|r| r.strip_suffix("]]")).is_some_and(|n| n.trim() == name))
}

fn parse_topology(text: &str) -> Result<Topology, ParseError> {
    let mut topo = Topology::new(Vec::new());
    let mut link_lines: Vec<usize> = Vec::new();
    let mut link_bandwidth_set: Vec<bool> = Vec::new();
    for (table, key, value, line) in fields(text)? {
        let Some(value) = value else {
            // A table header: [[device]], [[link]] or [costs].
            match table.as_str() {
                "device" => topo.devices.push(DeviceSpec::discrete(&format!("gpu{}", topo.devices.len()), 1, 16 * GIB)),
                "link" => {
                    topo.links.push(LinkSpec { a: 0, b: 0, kind: LinkKind::PcieP2p, bandwidth: 0.0, atomics: false });
                    link_lines.push(line);
                    link_bandwidth_set.push(false);
                }
                "costs" => {}
                other => return Err(err(line, format!("unknown table `{other}` (expected [costs], [[device]] or [[link]])"))),
            }
            continue;
        };
        if (table == "device" || table == "link") && !text_has_array_table(text, &table) {
            return Err(err(line, format!("`{table}` must be an array of tables: [[{table}]]")));
        }
        let f = Field { table: &table, key, value, line };
        match table.as_str() {
            "" => match f.key.as_str() {
                "kernel" => {
                    let s = f.string()?;
                    topo.kernel = KernelVersion::parse(s)
                        .ok_or_else(|| err(line, format!("field `kernel`: unknown version \"{s}\" (expected \"6.18\", \"7.0\" or \"7.1\")")))?;
                }
                "system_memory" => topo.system_memory = f.size()?,
                k => return Err(err(line, format!("unknown field `{k}` (expected kernel or system_memory)"))),
            },
            "device" => {
                let d = topo.devices.last_mut().expect("pushed at [[device]]");
                match f.key.as_str() {
                    "name" => d.name = f.string()?.to_string(),
                    "tiles" => {
                        let t = f.int()?;
                        if !(1..=2).contains(&t) {
                            return Err(err(line, format!("field `device.tiles`: {t} is not 1 or 2")));
                        }
                        d.tiles = t as u16;
                    }
                    "vram_per_tile" => d.vram_per_tile = f.size()?,
                    "integrated" => d.integrated = f.boolean()?,
                    "device_atomics_on_smem" => d.device_atomics_on_smem = f.boolean()?,
                    "need_64k" => d.need_64k = f.boolean()?,
                    "page_faults" => d.page_faults = f.boolean()?,
                    "needs_scratch" => d.needs_scratch = f.boolean()?,
                    "device_id" => d.device_id = f.uint(0xffff)? as u16,
                    k => return Err(err(line, format!("unknown field `device.{k}`"))),
                }
                if d.integrated && f.key == "integrated" {
                    d.vram_per_tile = 0;
                }
            }
            "link" => {
                let idx = topo.links.len() - 1;
                let l = &mut topo.links[idx];
                match f.key.as_str() {
                    "devices" => match &f.value {
                        Value::Array(v) if v.len() == 2 => {
                            let ids: Vec<i64> = v
                                .iter()
                                .map(|x| match x {
                                    Value::Int(i) if *i >= 0 => Ok(*i),
                                    _ => Err(err(line, "field `link.devices`: expected two device indices, e.g. [0, 1]")),
                                })
                                .collect::<Result<_, _>>()?;
                            l.a = ids[0] as u32;
                            l.b = ids[1] as u32;
                        }
                        _ => return Err(err(line, "field `link.devices`: expected two device indices, e.g. [0, 1]")),
                    },
                    "kind" => {
                        l.kind = match f.string()? {
                            "p2p" | "pcie" | "pcie-p2p" => LinkKind::PcieP2p,
                            "fabric" | "xelink" => LinkKind::Fabric,
                            "none" => LinkKind::None,
                            s => return Err(err(line, format!("field `link.kind`: unknown kind \"{s}\" (expected \"p2p\", \"fabric\" or \"none\")"))),
                        }
                    }
                    "bandwidth_gbps" => {
                        let g = f.float()?;
                        if g.is_nan() || g <= 0.0 {
                            return Err(err(line, "field `link.bandwidth_gbps`: must be positive"));
                        }
                        l.bandwidth = g * 1e9;
                        link_bandwidth_set[idx] = true;
                    }
                    "atomics" => l.atomics = f.boolean()?,
                    k => return Err(err(line, format!("unknown field `link.{k}`"))),
                }
            }
            "costs" => {
                let c = &mut topo.costs;
                let us = |f: &Field| -> Result<u64, ParseError> {
                    let v = f.float()?;
                    if v.is_nan() || v < 0.0 {
                        return Err(err(f.line, format!("field `{}`: must not be negative", f.name())));
                    }
                    Ok((v * 1000.0) as u64)
                };
                let gbps = |f: &Field| -> Result<f64, ParseError> {
                    let v = f.float()?;
                    if v.is_nan() || v <= 0.0 {
                        return Err(err(f.line, format!("field `{}`: must be positive", f.name())));
                    }
                    Ok(v * 1e9)
                };
                match f.key.as_str() {
                    "fault_service_us" => c.fault_service_ns = us(&f)?,
                    "copy_submit_us" => c.copy_submit_ns = us(&f)?,
                    "copy_fixed_us" => c.copy_fixed_ns = us(&f)?,
                    "per_page_cpu_us" => c.per_page_cpu_ns = us(&f)?,
                    "device_huge_pages" => c.device_huge_pages = f.boolean()?,
                    "tlb_invalidation_us" => c.tlb_invalidation_ns = us(&f)?,
                    "ioctl_us" => c.ioctl_ns = us(&f)?,
                    "cpu_fault_us" => c.cpu_fault_ns = us(&f)?,
                    "h2d_gbps" => c.h2d_bandwidth = gbps(&f)?,
                    "d2h_gbps" => c.d2h_bandwidth = gbps(&f)?,
                    "p2p_gbps" => c.p2p_bandwidth = gbps(&f)?,
                    "fabric_gbps" => c.fabric_bandwidth = gbps(&f)?,
                    "clear_gbps" => c.clear_bandwidth = gbps(&f)?,
                    "atomic_timeslice_ms" => c.atomic_timeslice_ns = us(&f)? * 1000,
                    "pagemap_call_ns" => c.pagemap_call_ns = us(&f)? / 1000,
                    "pagemap_scan_page_ns" => c.pagemap_scan_page_ns = us(&f)? / 1000,
                    "pagemap_read_page_ns" => c.pagemap_read_page_ns = us(&f)? / 1000,
                    k => return Err(err(line, format!("unknown field `costs.{k}`"))),
                }
            }
            _ => unreachable!("tables are checked at their header"),
        }
    }
    // Links without an explicit bandwidth take their kind's default from [costs].
    for (l, set) in topo.links.iter_mut().zip(&link_bandwidth_set) {
        if !set {
            l.bandwidth = match l.kind {
                LinkKind::Fabric => topo.costs.fabric_bandwidth,
                _ => topo.costs.p2p_bandwidth,
            };
        }
    }
    if let Err(m) = topo.validate() {
        // Point at the offending link's line where the message names one.
        let line = topo
            .links
            .iter()
            .position(|l| m.starts_with(&format!("link {}-{}", l.a, l.b)))
            .map(|i| link_lines[i])
            .unwrap_or(0);
        return Err(err(line, m));
    }
    Ok(topo)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
