//! How the domain's input types appear in the OpenAPI document: each type
//! that a request is parsed into states its own rule there, so the document
//! says what the parser accepts.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;

/// The id every example in the document uses.
pub const EXAMPLE_ID: &str = "0b9c5c6e-5d6a-4f5e-9a51-2f4f1c3d7e8a";

/// A UUID.
pub fn uuid(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .description(Some(description))
        .examples([EXAMPLE_ID])
        .into()
}

/// A string of `min..=max` characters.
pub fn text(description: &str, min: usize, max: usize, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length((min > 0).then_some(min))
        .max_length(Some(max))
        .examples([example])
        .into()
}
