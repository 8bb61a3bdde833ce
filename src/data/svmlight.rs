use super::{Dataset, LoadOptions};
use crate::error::Result;
use std::path::Path;
pub fn read(_path: &Path, _opts: &LoadOptions) -> Result<Dataset> {
    todo!()
}
