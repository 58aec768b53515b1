// Pinned host memory for rustorch (tensor.pin_memory(), DataLoader(pin_memory=True)).
// Device memory is host memory, so "pinned" only means "allocated here": the allocator tracks
// its live blocks so that is_pinned() answers truthfully for any address inside one.
#pragma once

namespace rustorch {

// True when `ptr` points into a live block of the pinned host allocator.
bool is_pinned_ptr(const void* ptr);

}  // namespace rustorch
