// Unit tests of common/sqlstate.hpp: slotguard's SQLSTATEs and the daemon's error reasons.
#include "sqlstate.hpp"

#include <gtest/gtest.h>

namespace {

using sg::core::is_retryable;
using sg::core::reason_for_sqlstate;

TEST(Sqlstate, CodesMatchTheSpec) {
  EXPECT_EQ(sg::core::kVersionConflict, "SG001");
  EXPECT_EQ(sg::core::kNotFound, "SG002");
  EXPECT_EQ(sg::core::kSoldOut, "SG003");
  EXPECT_EQ(sg::core::kHoldExpired, "SG004");
  EXPECT_EQ(sg::core::kInvalidTransition, "SG005");
}

TEST(SqlstateReason, SlotguardCodes) {
  EXPECT_EQ(reason_for_sqlstate("SG001"), "version_conflict");
  EXPECT_EQ(reason_for_sqlstate("SG002"), "not_found");
  EXPECT_EQ(reason_for_sqlstate("SG003"), "sold_out");
  EXPECT_EQ(reason_for_sqlstate("SG004"), "hold_expired");
  EXPECT_EQ(reason_for_sqlstate("SG005"), "invalid_transition");
}

TEST(SqlstateReason, ExclusionViolationIsOverlap) {
  EXPECT_EQ(reason_for_sqlstate("23P01"), "overlap");
}

TEST(SqlstateReason, OtherIntegrityViolationsAreConstraintViolations) {
  EXPECT_EQ(reason_for_sqlstate("23514"), "constraint_violation");  // check_violation
  EXPECT_EQ(reason_for_sqlstate("23505"), "constraint_violation");  // unique_violation
  EXPECT_EQ(reason_for_sqlstate("23503"), "constraint_violation");  // foreign_key_violation
  EXPECT_EQ(reason_for_sqlstate("23502"), "constraint_violation");  // not_null_violation
}

TEST(SqlstateReason, DataExceptionsAreInvalidParams) {
  EXPECT_EQ(reason_for_sqlstate("22023"), "invalid_params");  // invalid_parameter_value
  EXPECT_EQ(reason_for_sqlstate("42703"), "invalid_params");  // undefined_column
  EXPECT_EQ(reason_for_sqlstate("22P02"), "invalid_params");  // invalid_text_representation
  EXPECT_EQ(reason_for_sqlstate("22003"), "invalid_params");  // numeric_value_out_of_range
  EXPECT_EQ(reason_for_sqlstate("22007"), "invalid_params");  // invalid_datetime_format
  EXPECT_EQ(reason_for_sqlstate("22000"), "invalid_params");  // data_exception
}

TEST(SqlstateReason, InsufficientPrivilegeIsUnauthorized) {
  EXPECT_EQ(reason_for_sqlstate("42501"), "unauthorized");
}

TEST(SqlstateReason, ConnectionAndShutdownAreUnavailable) {
  EXPECT_EQ(reason_for_sqlstate("08000"), "unavailable");  // connection_exception
  EXPECT_EQ(reason_for_sqlstate("08001"), "unavailable");
  EXPECT_EQ(reason_for_sqlstate("08006"), "unavailable");  // connection_failure
  EXPECT_EQ(reason_for_sqlstate("57P01"), "unavailable");  // admin_shutdown
  EXPECT_EQ(reason_for_sqlstate("57P03"), "unavailable");  // cannot_connect_now
}

TEST(SqlstateReason, EverythingElseIsInternal) {
  EXPECT_EQ(reason_for_sqlstate("XX000"), "internal");
  EXPECT_EQ(reason_for_sqlstate("42P01"), "internal");  // undefined_table
  EXPECT_EQ(reason_for_sqlstate("40001"), "internal");  // retried, not mapped
  EXPECT_EQ(reason_for_sqlstate("57P02"), "internal");  // crash_shutdown
  EXPECT_EQ(reason_for_sqlstate("SG999"), "internal");
  EXPECT_EQ(reason_for_sqlstate("sg001"), "internal");  // SQLSTATEs are upper case
  EXPECT_EQ(reason_for_sqlstate(""), "internal");
  EXPECT_EQ(reason_for_sqlstate("2"), "internal");
}

TEST(SqlstateRetry, SerializationFailureAndDeadlockAreRetryable) {
  EXPECT_TRUE(is_retryable("40001"));
  EXPECT_TRUE(is_retryable("40P01"));
}

TEST(SqlstateRetry, OthersAreNot) {
  for (const char* code : {"40000", "40002", "40003", "23P01", "SG001", "55P03", "57014", ""})
    EXPECT_FALSE(is_retryable(code)) << code;
}

}  // namespace
