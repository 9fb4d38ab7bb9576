//! Tests of the sharding module: the bounded-load
//! `bounded::assign_bounded` (property tests over pseudo-random fleets).

mod bounded;
