//! The writer's tests, through the real writer and database, by topic.

mod admission;
mod basics;
mod collect;
mod exemplars;
