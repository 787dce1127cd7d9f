#![allow(dead_code)]

pub mod pair;
