// The typed API speaks in the kernel layer's value types (descriptors, ids, errno, formats):
// a user of DmaBufKit sees them without importing DmaBufKernel.
@_exported import DmaBufKernel
