//! Helpers for vixp system tests.
