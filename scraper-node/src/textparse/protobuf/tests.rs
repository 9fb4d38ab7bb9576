//! Tests of the protobuf parser.
