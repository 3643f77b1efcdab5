// version: the version slotguardd and slotguardctl report.
#pragma once

namespace sg::daemon {
inline constexpr const char* kVersion = "0.1.0";
}
