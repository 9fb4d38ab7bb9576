//! The gRPC reference page, `docs/grpc.md`, generated from the `.proto`
//! files' own comments (the descriptor set `build.rs` compiles, with
//! protoc's source info): every service and method of package
//! `scrapegrid.v1`, every message with its fields, every enum with its
//! values. The test fails when the committed page differs from what the
//! `.proto` files say; `UPDATE_REFERENCE=1 cargo test -p scrapegrid-proto
//! --test reference` rewrites it.

use std::fmt::Write as _;
use std::path::Path;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet, SourceCodeInfo,
};

/// Field numbers of descriptor messages, as source-info paths use them.
const FILE_PACKAGE: i32 = 2;
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED: i32 = 3;
const MESSAGE_ENUM: i32 = 4;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

/// The comment protoc kept for the element at `path`: leading, then
/// trailing, trimmed, as one paragraph per blank-line-separated block.
fn comment(info: &SourceCodeInfo, path: &[i32]) -> String {
    let Some(loc) = info.location.iter().find(|l| l.path == path) else {
        return String::new();
    };
    let text = [loc.leading_comments(), loc.trailing_comments()]
        .iter()
        .filter(|c| !c.trim().is_empty())
        .map(|c| {
            c.lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    text
}

/// A comment inside a table cell: one line.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn type_name(f: &FieldDescriptorProto) -> String {
    let t = match f.r#type() {
        Type::Message | Type::Enum => f.type_name().trim_start_matches('.').to_string(),
        Type::Double => "double".into(),
        Type::Float => "float".into(),
        Type::Int64 => "int64".into(),
        Type::Uint64 => "uint64".into(),
        Type::Int32 => "int32".into(),
        Type::Fixed64 => "fixed64".into(),
        Type::Fixed32 => "fixed32".into(),
        Type::Bool => "bool".into(),
        Type::String => "string".into(),
        Type::Group => "group".into(),
        Type::Bytes => "bytes".into(),
        Type::Uint32 => "uint32".into(),
        Type::Sfixed32 => "sfixed32".into(),
        Type::Sfixed64 => "sfixed64".into(),
        Type::Sint32 => "sint32".into(),
        Type::Sint64 => "sint64".into(),
    };
    match f.label() {
        Label::Repeated => format!("repeated {t}"),
        _ if f.proto3_optional() => format!("optional {t}"),
        _ => t,
    }
}

fn paragraph(out: &mut String, text: &str) {
    if !text.is_empty() {
        let _ = writeln!(out, "{text}\n");
    }
}

fn message(
    out: &mut String,
    info: &SourceCodeInfo,
    prefix: &str,
    m: &DescriptorProto,
    path: &[i32],
) {
    let name = format!("{prefix}{}", m.name());
    let _ = writeln!(out, "### `{name}`\n");
    paragraph(out, &comment(info, path));
    if !m.field.is_empty() {
        out.push_str("| field | number | type | description |\n|---|---|---|---|\n");
        for (i, f) in m.field.iter().enumerate() {
            let p = [path, &[MESSAGE_FIELD, i as i32]].concat();
            let oneof = f
                .oneof_index
                .filter(|_| !f.proto3_optional())
                .and_then(|o| m.oneof_decl.get(o as usize))
                .map(|o| format!(" (one of `{}`)", o.name()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{}` | {} | `{}`{oneof} | {} |",
                f.name(),
                f.number(),
                type_name(f),
                cell(&comment(info, &p))
            );
        }
        out.push('\n');
    }
    for (i, e) in m.enum_type.iter().enumerate() {
        enumeration(
            out,
            info,
            &format!("{name}."),
            e,
            &[path, &[MESSAGE_ENUM, i as i32]].concat(),
        );
    }
    for (i, n) in m.nested_type.iter().enumerate() {
        if n.options.as_ref().is_some_and(|o| o.map_entry()) {
            continue;
        }
        message(
            out,
            info,
            &format!("{name}."),
            n,
            &[path, &[MESSAGE_NESTED, i as i32]].concat(),
        );
    }
}

fn enumeration(
    out: &mut String,
    info: &SourceCodeInfo,
    prefix: &str,
    e: &EnumDescriptorProto,
    path: &[i32],
) {
    let _ = writeln!(out, "### enum `{prefix}{}`\n", e.name());
    paragraph(out, &comment(info, path));
    out.push_str("| value | number | description |\n|---|---|---|\n");
    for (i, v) in e.value.iter().enumerate() {
        let p = [path, &[ENUM_VALUE, i as i32]].concat();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            v.name(),
            v.number(),
            cell(&comment(info, &p))
        );
    }
    out.push('\n');
}

fn file(out: &mut String, f: &FileDescriptorProto) {
    let info = f.source_code_info.clone().unwrap_or_default();
    let _ = writeln!(out, "## `{}`\n", f.name());
    paragraph(out, &comment(&info, &[FILE_PACKAGE]));
    for (s, svc) in f.service.iter().enumerate() {
        let _ = writeln!(out, "### service `{}.{}`\n", f.package(), svc.name());
        paragraph(out, &comment(&info, &[FILE_SERVICE, s as i32]));
        for (m, method) in svc.method.iter().enumerate() {
            let stream = |yes: bool| if yes { "stream " } else { "" };
            let _ = writeln!(
                out,
                "- `{}({}{}) returns ({}{})`{}",
                method.name(),
                stream(method.client_streaming()),
                method.input_type().trim_start_matches('.'),
                stream(method.server_streaming()),
                method.output_type().trim_start_matches('.'),
                match comment(&info, &[FILE_SERVICE, s as i32, SERVICE_METHOD, m as i32]) {
                    c if c.is_empty() => String::new(),
                    c => format!(": {}", cell(&c)),
                }
            );
        }
        out.push('\n');
    }
    for (i, m) in f.message_type.iter().enumerate() {
        message(out, &info, "", m, &[FILE_MESSAGE, i as i32]);
    }
    for (i, e) in f.enum_type.iter().enumerate() {
        enumeration(out, &info, "", e, &[FILE_ENUM, i as i32]);
    }
}

fn render() -> String {
    let set = FileDescriptorSet::decode(scrapegrid_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut out = String::from(
        "# gRPC reference\n\n\
         Generated from the comments of `proto/proto/scrapegrid/v1/*.proto` by\n\
         `proto/tests/reference.rs` (`UPDATE_REFERENCE=1 cargo test -p\n\
         scrapegrid-proto --test reference` after changing a `.proto` file).\n\
         Every gRPC server also serves `grpc.health.v1.Health` and server\n\
         reflection (README, \"Command-line contract\"). Messages of package\n\
         `prometheus` are Prometheus's remote write types\n\
         (`proto/proto/prometheus/`).\n\n",
    );
    let mut files: Vec<&FileDescriptorProto> = set
        .file
        .iter()
        .filter(|f| f.package() == "scrapegrid.v1")
        .collect();
    // The services first: control, ingest, query, then the shared types.
    files.sort_by_key(|f| (f.service.is_empty(), f.name().to_string()));
    for f in files {
        file(&mut out, f);
    }
    out
}

#[test]
fn reference_page_matches_the_proto_files() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grpc.md");
    let want = render();
    // Comments made it through: every service has its description.
    assert!(
        want.contains("scraper -> storage contract"),
        "no source info in the descriptor set"
    );
    if std::env::var_os("UPDATE_REFERENCE").is_some() {
        std::fs::write(&page, &want).unwrap();
    }
    let have = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(
        have == want,
        "docs/grpc.md is not what the .proto files say: run \
         `UPDATE_REFERENCE=1 cargo test -p scrapegrid-proto --test reference`"
    );
}
