"""Pure science of the vison Tasks: functions over NumPy arrays, no file I/O."""
