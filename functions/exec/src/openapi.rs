//! The exec function's part of the OpenAPI document: its routes, described beside each handler.

use utoipa::OpenApi;

use crate::{files, run};

/// Every exec route.
#[derive(OpenApi)]
#[openapi(paths(
    crate::health,
    run::run,
    files::list,
    files::get_file,
    files::put_file,
    files::delete_file,
))]
pub struct ExecApi;
