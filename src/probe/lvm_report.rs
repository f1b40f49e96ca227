//! Parses LVM's JSON reports (`--reportformat json --units b --nosuffix`).
//! Every value arrives as a string; sizes are plain byte counts.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use super::snapshot::{Lv, LvSegment, Pv, SegmentDevice, Vg};

/// The columns luksify asks for; the parser reads exactly these names.
pub const PV_COLUMNS: &str = "pv_name,pv_uuid,vg_name,pv_size,pv_free,pe_start,pv_pe_count,pv_pe_alloc_count,dev_size,pv_tags,pv_attr";
pub const VG_COLUMNS: &str = "vg_name,vg_uuid,vg_extent_size,vg_extent_count,vg_free_count,vg_tags,vg_attr,pv_count,lv_count";
pub const LV_COLUMNS: &str = "lv_name,vg_name,lv_uuid,lv_size,lv_attr,lv_active,lv_path,lv_dm_path,segtype,seg_start_pe,seg_size_pe,devices,seg_pe_ranges,move_pv,copy_percent,origin,pool_lv,lv_tags,lv_role";

type Row = BTreeMap<String, String>;

/// Extracts the rows of one report type (`pv`, `vg`, `lv`) from LVM's JSON.
fn rows(json: &str, kind: &str) -> Result<Vec<Row>> {
    let v: Value = serde_json::from_str(json)
        .with_context(|| format!("LVM's {kind} report is not valid JSON"))?;
    let reports = v
        .get("report")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("LVM's {kind} report has no \"report\" array"))?;
    let mut out = Vec::new();
    for r in reports {
        // `lvs --segments` files its rows under "seg", not "lv".
        let items = r
            .get(kind)
            .or_else(|| if kind == "lv" { r.get("seg") } else { None });
        let Some(items) = items.and_then(Value::as_array) else {
            continue;
        };
        for item in items {
            let obj = item
                .as_object()
                .ok_or_else(|| anyhow!("LVM's {kind} report holds a row that is not an object"))?;
            out.push(
                obj.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
            );
        }
    }
    Ok(out)
}

fn text(row: &Row, key: &str) -> Option<String> {
    row.get(key).filter(|s| !s.is_empty()).cloned()
}

fn num(row: &Row, key: &str, kind: &str) -> Result<u64> {
    let s = row.get(key).map(String::as_str).unwrap_or("");
    if s.is_empty() {
        return Ok(0);
    }
    s.trim()
        .parse()
        .with_context(|| format!("LVM's {kind} report has {key}={s:?}, which is not a number"))
}

fn list(row: &Row, key: &str) -> Vec<String> {
    row.get(key)
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub fn parse_pvs(json: &str) -> Result<Vec<Pv>> {
    rows(json, "pv")?
        .iter()
        .map(|r| {
            Ok(Pv {
                path: text(r, "pv_name").ok_or_else(|| anyhow!("a PV row has no pv_name"))?,
                uuid: text(r, "pv_uuid").unwrap_or_default(),
                vg: text(r, "vg_name"),
                size: num(r, "pv_size", "pv")?,
                free: num(r, "pv_free", "pv")?,
                pe_start: num(r, "pe_start", "pv")?,
                pe_count: num(r, "pv_pe_count", "pv")?,
                pe_alloc_count: num(r, "pv_pe_alloc_count", "pv")?,
                dev_size: num(r, "dev_size", "pv")?,
                tags: list(r, "pv_tags"),
                // The third attribute character is `m` for a PV LVM cannot find.
                missing: r
                    .get("pv_attr")
                    .is_some_and(|a| a.chars().nth(2) == Some('m')),
            })
        })
        .collect()
}

pub fn parse_vgs(json: &str) -> Result<Vec<Vg>> {
    rows(json, "vg")?
        .iter()
        .map(|r| {
            Ok(Vg {
                name: text(r, "vg_name").ok_or_else(|| anyhow!("a VG row has no vg_name"))?,
                uuid: text(r, "vg_uuid").unwrap_or_default(),
                extent_size: num(r, "vg_extent_size", "vg")?,
                extent_count: num(r, "vg_extent_count", "vg")?,
                free_count: num(r, "vg_free_count", "vg")?,
                tags: list(r, "vg_tags"),
                pv_count: num(r, "pv_count", "vg")?,
                lv_count: num(r, "lv_count", "vg")?,
            })
        })
        .collect()
}

/// `lvs --segments` prints one row per segment; rows of the same LV are merged.
pub fn parse_lvs(json: &str) -> Result<Vec<Lv>> {
    let mut lvs: Vec<Lv> = Vec::new();
    for r in rows(json, "lv")? {
        let name = text(&r, "lv_name").ok_or_else(|| anyhow!("an LV row has no lv_name"))?;
        // Hidden LVs are printed in brackets (`[pvmove0]`); the brackets are not part of the name.
        let name = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let vg = text(&r, "vg_name").unwrap_or_default();
        let segment = LvSegment {
            segtype: text(&r, "segtype").unwrap_or_default(),
            start_pe: num(&r, "seg_start_pe", "lv")?,
            size_pe: num(&r, "seg_size_pe", "lv")?,
            devices: parse_devices(r.get("devices").map(String::as_str).unwrap_or(""))?,
        };
        if let Some(lv) = lvs.iter_mut().find(|l| l.name == name && l.vg == vg) {
            lv.segments.push(segment);
            continue;
        }
        let attr = text(&r, "lv_attr").unwrap_or_default();
        lvs.push(Lv {
            // Hidden LVs are printed in brackets (`[pvmove0]`); the brackets are not part of the name.
            name: name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            vg,
            uuid: text(&r, "lv_uuid").unwrap_or_default(),
            size: num(&r, "lv_size", "lv")?,
            active: r
                .get("lv_active")
                .is_some_and(|a| a.contains("active") && !a.contains("inactive"))
                || attr.chars().nth(4) == Some('a'),
            attr,
            path: text(&r, "lv_path"),
            dm_path: text(&r, "lv_dm_path"),
            role: list(&r, "lv_role"),
            origin: text(&r, "origin"),
            pool_lv: text(&r, "pool_lv"),
            move_pv: text(&r, "move_pv"),
            copy_percent: text(&r, "copy_percent").and_then(|s| s.trim().parse().ok()),
            tags: list(&r, "lv_tags"),
            segments: vec![segment],
            filesystem: None,
        });
    }
    Ok(lvs)
}

/// Parses `/dev/vda2(0),/dev/vdb(125)` and `pvmove0(0)`.
fn parse_devices(s: &str) -> Result<Vec<SegmentDevice>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let (dev, rest) = t
                .rsplit_once('(')
                .ok_or_else(|| anyhow!("LVM device entry {t:?} has no extent offset"))?;
            let start = rest
                .trim_end_matches(')')
                .parse()
                .with_context(|| format!("LVM device entry {t:?} has a bad extent offset"))?;
            Ok(SegmentDevice {
                device: dev
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                start_pe: start,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LVS: &str = r#"{"report":[{"seg":[
        {"lv_name":"root","vg_name":"vg0","lv_uuid":"u1","lv_size":"524288000","lv_attr":"-wI-ao----","lv_active":"active","lv_path":"/dev/vg0/root","lv_dm_path":"/dev/mapper/vg0-root","segtype":"linear","seg_start_pe":"0","seg_size_pe":"60","devices":"pvmove0(0)","seg_pe_ranges":"","move_pv":"","copy_percent":"","origin":"","pool_lv":"","lv_tags":"","lv_role":"public"},
        {"lv_name":"root","vg_name":"vg0","lv_uuid":"u1","lv_size":"524288000","lv_attr":"-wI-ao----","lv_active":"active","lv_path":"/dev/vg0/root","lv_dm_path":"/dev/mapper/vg0-root","segtype":"linear","seg_start_pe":"60","seg_size_pe":"65","devices":"/dev/vda2(60)","seg_pe_ranges":"","move_pv":"","copy_percent":"","origin":"","pool_lv":"","lv_tags":"","lv_role":"public"},
        {"lv_name":"[pvmove0]","vg_name":"vg0","lv_uuid":"u2","lv_size":"251658240","lv_attr":"p-C-aom---","lv_active":"active","lv_path":"","lv_dm_path":"/dev/mapper/vg0-pvmove0","segtype":"mirror","seg_start_pe":"0","seg_size_pe":"60","devices":"/dev/vda2(0),/dev/vdb(0)","seg_pe_ranges":"","move_pv":"/dev/vda2","copy_percent":"37.50","origin":"","pool_lv":"","lv_tags":"","lv_role":"private,pvmove"}
    ]}]}"#;

    #[test]
    fn segments_merge_and_pvmove_is_recognised() {
        let lvs = parse_lvs(LVS).unwrap();
        assert_eq!(lvs.len(), 2);
        assert_eq!(lvs[0].segments.len(), 2);
        assert_eq!(lvs[0].segments[0].devices[0].device, "pvmove0");
        assert!(lvs[0].active);
        let mv = &lvs[1];
        assert_eq!(mv.name, "pvmove0");
        assert!(mv.is_pvmove());
        assert!(!mv.is_public());
        assert_eq!(mv.move_pv.as_deref(), Some("/dev/vda2"));
        assert_eq!(mv.copy_percent, Some(37.5));
        assert_eq!(mv.segments[0].devices[1].device, "/dev/vdb");
    }

    #[test]
    fn bad_numbers_are_named() {
        let err = parse_pvs(r#"{"report":[{"pv":[{"pv_name":"/dev/vda2","pv_size":"1.5g"}]}]}"#)
            .unwrap_err();
        assert!(format!("{err:#}").contains("pv_size=\"1.5g\""), "{err:#}");
    }

    #[test]
    fn orphan_pv_has_no_vg_and_tags_split() {
        let pvs = parse_pvs(r#"{"report":[{"pv":[{"pv_name":"/dev/vdb","vg_name":"","pv_size":"1073741824","pv_tags":"a,b","pv_attr":"---"}]}]}"#).unwrap();
        assert_eq!(pvs[0].vg, None);
        assert_eq!(pvs[0].tags, ["a", "b"]);
        assert!(!pvs[0].missing);
    }
}
