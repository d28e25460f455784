//! Empty library target: lets sctp-user name this crate as a build dependency, so cargo
//! rebuilds the controller when the XDP program changes.
#![no_std]
