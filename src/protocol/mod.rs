//! The distcc wire protocol, versions 1, 2 and 3, without any I/O.
//!
//! [`token`] knows the 12-byte element headers, [`message`] the request and
//! response and their encoders, [`decoder`] the incremental decoders that the
//! blocking client and the non-blocking daemon share (facts §1).

pub mod decoder;
pub mod message;
pub mod token;

pub use decoder::{Limits, RequestDecoder, ResponseDecoder, read_response};
pub use message::{
    Body, FileContent, FileEntry, Request, Response, Version, encode_request, encode_request_body,
    encode_request_head, encode_response,
};
pub use token::Token;
