//! The QWP1 message decoder: any valid message into tables, schemas and rows,
//! with a typed error for every malformed input.
