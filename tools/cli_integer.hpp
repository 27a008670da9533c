// qmr_cli::decimal_integer: integer options of the qmr tool read as decimal, in 64 bits (shared by every command).
#pragma once

#include <algorithm>
#include <string>

#include <CLI/CLI.hpp>

namespace qmr_cli {

// The text of an integer option, checked and made plain before CLI11 converts it. CLI11 2.1
// reads integers with strtoll/strtoull in base 0, so "010" was 8 and "0x10" 16, and an
// unsigned option took "-1" as 2^64-1 and anything past 2^64 as 2^64-1 (two --seed values,
// one set of problems). Here: decimal digits only, with a leading '-' where `negative` allows
// it; leading zeros dropped (010 is ten); at most 64 bits. Ranges of the option's own type and
// meaning are its other checks'.
inline CLI::Validator decimal_integer(bool negative) {
  return CLI::Validator(
      [negative](std::string& text) -> std::string {
        const bool minus = !text.empty() && text[0] == '-';
        std::string digits = text.substr(minus ? 1 : 0);
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
          return "'" + text + "' is not a " + (negative ? "" : "non-negative ") + "decimal integer";
        if (minus && !negative) return "'" + text + "' is negative";
        digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
        // 2^64 - 1 has 20 digits; of 20, only those that compare at most it as text fit.
        if (digits.size() > 20 || (digits.size() == 20 && digits > "18446744073709551615") ||
            (minus && (digits.size() > 19 || (digits.size() == 19 && digits > "9223372036854775808"))))
          return "'" + text + "' is out of range";
        text = (minus && digits != "0" ? "-" : "") + digits;
        return {};
      },
      "");
}

// The most worker threads any command takes (--threads): 0 was silently 1, and a count of
// 100000 spun workers for minutes on a small machine before the pool failed.
inline constexpr unsigned max_threads = 1024;

}  // namespace qmr_cli
