//! The end-to-end test package; its tests live in `e2e/`, sharing `e2e/helpers.rs`.
