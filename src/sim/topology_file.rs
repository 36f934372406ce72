//! The topology file: its format, and the reader that turns it into a
//! [`Topology`].
//!
//! # Format
//!
//! TOML, read with `toml_edit`'s parser: top-level keys, one `[costs]`
//! table, and `[[device]]` / `[[link]]` arrays of tables. Sizes are integers
//! (bytes) or strings with a unit ("16 GiB", "512 MiB"). Every error names
//! the line (from toml_edit's spans) and, past the syntax, the field.
//!
//! ```toml
//! kernel = "7.0"              # "6.18-rc1"/"6.18-rc2", "6.18", "7.0" or "7.1"
//! system_memory = "256 GiB"
//! host_memory_gbps = 80       # the host's memory, shared by every link
//! future_fabric = false       # true: a future kernel with Xe Link for SVM
//!
//! [[device]]                  # repeated per device, in index order
//! class = "b580"              # "b580", "b60", "max1550" or "integrated":
//!                             # the class's figures, before the keys below
//! name = "gpu0"
//! tiles = 1                   # 1 or 2
//! vram_per_tile = "16 GiB"    # 0 or integrated = true for no VRAM
//! integrated = false
//! device_atomics_on_smem = false
//! need_64k = false            # XE_VRAM_FLAGS_NEED64K
//! page_faults = true          # false: no USM, so no SVM
//! needs_scratch = true        # Xe2: SCRATCH_PAGE allowed with FAULT_MODE
//! local_gbps = 456            # a kernel's bandwidth to its own VRAM
//! host_gbps = 13              # its host link, per direction (both alike)
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
//!
//! Defaults a file does not set: a `[[device]]` without `class` has the
//! B580 class's bandwidths with 1 tile of 16 GiB; a p2p link runs at 0.8 x the slower host
//! link; a "fabric" link is PCIe P2P (that bandwidth, no atomics) unless
//! `future_fabric = true`, and then 22 GB/s (`fabric_gbps`) unless its
//! `bandwidth_gbps` says otherwise; `device_huge_pages` follows the kernel
//! release. In `[costs]`, `h2d_gbps` or `d2h_gbps` (which must agree: one
//! copy engine moves both ways) set the host link of every device that
//! does not set its own `host_gbps`.

use std::fmt;

use super::classes::Class;
use super::config::*;
use crate::errno::Errno;

/// A topology file error, with the 1-based line it was found on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The 1-based line (0: no line).
    pub line: usize,
    /// What is wrong.
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

/// The fields of one table, in document order, each with its line
/// (toml_edit parses; this keeps the lines for the messages).
fn fields<'a>(text: &str, name: &'a str, t: &toml_edit::Table, header: usize) -> Result<Vec<Field<'a>>, ParseError> {
    let mut out = Vec::new();
    for (k, item) in t.iter() {
        let line = t.get_key_value(k).and_then(|(key, _)| key.span()).map_or(header, |s| line_at(text, Some(s)));
        match item {
            toml_edit::Item::Value(v) => out.push(Field { table: name, key: k.to_string(), value: value_of(v, line)?, line }),
            _ => {
                let what = if name.is_empty() { format!("`{k}`") } else { format!("`{name}.{k}`") };
                return Err(err(line, format!("unexpected table {what}")));
            }
        }
    }
    Ok(out)
}

impl Topology {
    /// Parses a topology file (format in the module doc).
    pub fn parse(text: &str) -> Result<Topology, ParseError> {
        parse_topology(text)
    }
}

fn parse_topology(text: &str) -> Result<Topology, ParseError> {
    // toml_edit says nothing for some errors (a key with no value): say
    // what it could be, never an empty message.
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        let m = e.message().trim().replace('\n', ": ");
        err(line_at(text, e.span()), if m.is_empty() { "not TOML here (a key without a value?)".to_string() } else { m })
    })?;
    let root = doc.as_table();
    let mut topo = Topology::new(Vec::new());
    let mut link_lines: Vec<usize> = Vec::new();
    let mut link_bandwidth_set: Vec<bool> = Vec::new();
    let mut device_host_set: Vec<bool> = Vec::new();
    let mut host_override: Option<(f64, String)> = None;
    // Plain keys (kernel, system_memory) come before any table in TOML.
    let plain = toml_edit::Table::from_iter(root.iter().filter(|(_, i)| i.is_value()).map(|(k, i)| (k, i.clone())));
    for f in fields(text, "", &plain, 0)? {
        let line = root.get_key_value(&f.key).and_then(|(key, _)| key.span()).map_or(0, |s| line_at(text, Some(s)));
        root_field(&mut topo, &Field { line, ..f })?;
    }
    for (k, item) in root.iter() {
        let line = root.get_key_value(k).and_then(|(key, _)| key.span()).map_or(0, |s| line_at(text, Some(s)));
        match (k, item) {
            (_, toml_edit::Item::Value(_) | toml_edit::Item::None) => {}
            ("costs", toml_edit::Item::Table(t)) => {
                for f in fields(text, "costs", t, line_at(text, t.span()).max(line))? {
                    cost_field(&mut topo, &mut host_override, &f)?;
                }
            }
            ("device", toml_edit::Item::ArrayOfTables(a)) => {
                for t in a.iter() {
                    let name = format!("gpu{}", topo.devices.len());
                    let fs = fields(text, "device", t, line_at(text, t.span()).max(line))?;
                    // A class sets every figure first; the other keys refine it.
                    let mut d = match fs.iter().find(|f| f.key == "class") {
                        Some(f) => {
                            let c = f.string()?;
                            Class::parse(c).ok_or_else(|| {
                                err(f.line, format!("field `device.class`: unknown class \"{c}\" (expected \"b580\", \"b60\", \"max1550\" or \"integrated\")"))
                            })?
                            .device(&name)
                        }
                        None => DeviceSpec::discrete(&name, 1, 16 * GIB),
                    };
                    let mut host_set = false;
                    for f in fs.iter().filter(|f| f.key != "class") {
                        host_set |= f.key == "host_gbps";
                        device_field(&mut d, f)?;
                    }
                    topo.devices.push(d);
                    device_host_set.push(host_set);
                }
            }
            ("link", toml_edit::Item::ArrayOfTables(a)) => {
                for t in a.iter() {
                    let header = line_at(text, t.span()).max(line);
                    let mut l = LinkSpec { a: 0, b: 0, kind: LinkKind::PcieP2p, bandwidth: 0.0, atomics: false };
                    let mut bandwidth_set = false;
                    for f in fields(text, "link", t, header)? {
                        bandwidth_set |= link_field(&mut l, &f)?;
                    }
                    topo.links.push(l);
                    link_lines.push(header);
                    link_bandwidth_set.push(bandwidth_set);
                }
            }
            ("device" | "link", _) => return Err(err(line, format!("`{k}` must be an array of tables: [[{k}]]"))),
            ("costs", _) => return Err(err(line, "`costs` must be one table: [costs]")),
            (other, _) => return Err(err(line, format!("unknown table `{other}` (expected [costs], [[device]] or [[link]])"))),
        }
    }
    if let Some((bw, _)) = host_override {
        for (d, set) in topo.devices.iter_mut().zip(&device_host_set) {
            if !set {
                d.host_bandwidth = bw;
            }
        }
    }
    topo.set_kernel(topo.kernel);
    // Links without an explicit bandwidth take their kind's default.
    topo.settle_links(&link_bandwidth_set);
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


/// A top-level field.
fn root_field(topo: &mut Topology, f: &Field) -> Result<(), ParseError> {
    let line = f.line;
    match f.key.as_str() {
        "kernel" => {
            let s = f.string()?;
            topo.kernel = KernelVersion::parse(s)
                .ok_or_else(|| err(line, format!("field `kernel`: unknown version \"{s}\" (expected \"6.18-rc1\", \"6.18-rc2\", \"6.18\", \"7.0\" or \"7.1\")")))?;
        }
        "system_memory" => topo.system_memory = f.size()?,
        "future_fabric" => topo.future_fabric = f.boolean()?,
        "host_memory_gbps" => topo.host_memory_bandwidth = gbps(f)?,
        k => return Err(err(line, format!("unknown field `{k}` (expected kernel, system_memory, host_memory_gbps or future_fabric)"))),
    }
    Ok(())
}

/// A field of a `[[device]]`.
fn device_field(d: &mut DeviceSpec, f: &Field) -> Result<(), ParseError> {
    let line = f.line;
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
        "local_gbps" => d.local_bandwidth = gbps(f)?,
        "host_gbps" => d.host_bandwidth = gbps(f)?,
        "device_id" => d.device_id = f.uint(0xffff)? as u16,
        k => return Err(err(line, format!("unknown field `device.{k}`"))),
    }
    if d.integrated && f.key == "integrated" {
        d.vram_per_tile = 0;
    }
    Ok(())
}

/// A field of a `[[link]]`; whether it set the bandwidth.
fn link_field(l: &mut LinkSpec, f: &Field) -> Result<bool, ParseError> {
    let line = f.line;
    let mut bandwidth_set = false;
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
            bandwidth_set = true;
        }
        "atomics" => l.atomics = f.boolean()?,
        k => return Err(err(line, format!("unknown field `link.{k}`"))),
    }
    Ok(bandwidth_set)
}

/// A field of `[costs]`. `host`: the host link `h2d_gbps` / `d2h_gbps` set
/// for every device, and which key set it.
fn cost_field(topo: &mut Topology, host: &mut Option<(f64, String)>, f: &Field) -> Result<(), ParseError> {
    let line = f.line;
    let c = &mut topo.costs;
    let us = |f: &Field| -> Result<u64, ParseError> {
        let v = f.float()?;
        if v.is_nan() || v < 0.0 {
            return Err(err(f.line, format!("field `{}`: must not be negative", f.name())));
        }
        Ok((v * 1000.0) as u64)
    };
    match f.key.as_str() {
        "fault_service_us" => c.fault_service_ns = us(f)?,
        "copy_submit_us" => c.copy_submit_ns = us(f)?,
        "copy_fixed_us" => c.copy_fixed_ns = us(f)?,
        "per_page_cpu_us" => c.per_page_cpu_ns = us(f)?,
        "device_huge_pages" => topo.huge_pages_override = Some(f.boolean()?),
        "tlb_invalidation_us" => c.tlb_invalidation_ns = us(f)?,
        "ioctl_us" => c.ioctl_ns = us(f)?,
        "cpu_fault_us" => c.cpu_fault_ns = us(f)?,
        "h2d_gbps" | "d2h_gbps" => {
            let bw = gbps(f)?;
            if let Some((other, key)) = host {
                if *other != bw {
                    return Err(err(line, format!("field `{}`: differs from `costs.{key}`; xe moves both directions with one copy engine, so the host link is one figure (or set `device.host_gbps`)", f.name())));
                }
            }
            *host = Some((bw, f.key.clone()));
        }
        "p2p_gbps" => return Err(err(line, "field `costs.p2p_gbps`: a p2p link's default is 0.8 x the slower host link; set `link.bandwidth_gbps` instead")),
        "clear_gbps" => return Err(err(line, "field `costs.clear_gbps`: clears run at half each device's `local_gbps`; set that instead")),
        "fabric_gbps" => c.fabric_bandwidth = gbps(f)?,
        "zero_fill_gbps" => c.zero_fill_bandwidth = gbps(f)?,
        "atomic_timeslice_ms" => c.atomic_timeslice_ns = us(f)? * 1000,
        "pagemap_call_ns" => c.pagemap_call_ns = us(f)? / 1000,
        "pagemap_scan_page_ns" => c.pagemap_scan_page_ns = us(f)? / 1000,
        "pagemap_read_page_ns" => c.pagemap_read_page_ns = us(f)? / 1000,
        "zero_page_map_ns" => c.zero_page_map_ns = us(f)? / 1000,
        k => return Err(err(line, format!("unknown field `costs.{k}`"))),
    }
    Ok(())
}

/// A bandwidth field in GB/s, as bytes/s: positive.
fn gbps(f: &Field) -> Result<f64, ParseError> {
    let v = f.float()?;
    if v.is_nan() || v <= 0.0 {
        return Err(err(f.line, format!("field `{}`: must be positive", f.name())));
    }
    Ok(v * 1e9)
}
