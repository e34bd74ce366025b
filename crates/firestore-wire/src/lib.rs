//! Firestore REST v1 JSON wire types, shared by the Counterbook app (wasm32) and
//! `counterbook-server` (native).
//!
//! The types follow the proto3 JSON mapping that Cloud Firestore, its emulator and the official
//! Firebase clients speak: `integerValue` travels as a string, `nullValue` may be `null` or
//! `"NULL_VALUE"`, `doubleValue` may be `"NaN"` or `"Infinity"`, timestamps are RFC 3339 strings.
//! Everything here is pure data and pure functions: no IO, no clock.

pub mod batch_get;
pub mod listen;
pub mod map;
pub mod names;
pub mod query;
pub mod sort;
pub mod status;
pub mod timestamp;
pub mod transaction;
pub mod value;
pub mod write;

pub use batch_get::{BatchGetRequest, BatchGetResponseItem};
pub use listen::{
    grpc_code, grpc_number, DocumentChange, DocumentDelete, DocumentRemove, DocumentsTarget,
    ExistenceFilter, ListenRequest, ListenResponse, QueryTarget, RpcStatus, Target, TargetChange,
    TargetChangeType, TargetKind,
};
pub use map::map_by_insertion;
pub use names::{is_reserved_id, DocumentName, NameError};
pub use query::{
    CollectionSelector, CompositeFilter, CompositeOperator, Cursor, Direction, FieldFilter,
    FieldOperator, FieldReference, Filter, Order, Projection, RunQueryRequest,
    RunQueryResponseItem, StructuredQuery, UnaryFilter, UnaryOperator,
};
pub use status::{Code, ErrorResponse, Status};
pub use timestamp::{Timestamp, TimestampError};
pub use transaction::{ReadOnlyOptions, ReadWriteOptions, TransactionOptions};
pub use value::{
    ArrayValue, Document, LatLng, MapValue, Value, VECTOR_TYPE_KEY, VECTOR_TYPE_NAME,
    VECTOR_VALUE_KEY,
};
pub use write::{
    CommitRequest, CommitResponse, DocumentMask, FieldTransform, Precondition, ServerValue,
    TransformKind, Write, WriteOperation, WriteRequest, WriteResponse, WriteResult,
};
