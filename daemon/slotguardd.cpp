// slotguardd: the hold-expiry sweep and slotguard's operations over a local Unix socket
// (docs/daemon.md). Usage: slotguardd [--config PATH] [--check-config] [--version]
#include <cstring>
#include <iostream>
#include <string>

#include "config.hpp"
#include "event_loop.hpp"
#include "version.hpp"

namespace {

constexpr const char* kDefaultConfig = "/etc/slotguard/slotguardd.yaml";

void usage(std::ostream& out) {
  out << "usage: slotguardd [--config PATH] [--check-config] [--version]\n"
         "  --config PATH    configuration file (default "
      << kDefaultConfig
      << ")\n"
         "  --check-config   validate the configuration and exit (0 valid, 1 not)\n"
         "  --version        print the version and exit\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = kDefaultConfig;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" || a == "-c") {
      if (i + 1 >= argc) {
        usage(std::cerr);
        return 2;
      }
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(std::strlen("--config="));
    } else if (a == "--check-config") {
      check = true;
    } else if (a == "--version") {
      std::cout << "slotguardd " << sg::daemon::kVersion << "\n";
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    } else {
      std::cerr << "slotguardd: unknown argument '" << a << "'\n";
      usage(std::cerr);
      return 2;
    }
  }
  if (check) {
    try {
      sg::daemon::load_config(config_path);
    } catch (const std::exception& e) {
      std::cerr << "slotguardd: " << e.what() << "\n";
      return 1;
    }
    std::cout << config_path << ": configuration is valid\n";
    return 0;
  }
  return sg::daemon::run_daemon(config_path);
}
