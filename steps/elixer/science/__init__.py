"""Pure science of the ELiXer steps: numpy in, numbers out; no file I/O."""
