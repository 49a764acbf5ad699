"""The members service: cooperative members, households, WASH surveys, promotion and eligibility."""
