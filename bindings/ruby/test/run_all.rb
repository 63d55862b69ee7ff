# frozen_string_literal: true

# Entry point of the Ruby binding's tests:
#   cd bindings/ruby && ruby -Ilib -Itest test/run_all.rb
# Requires every test/**/*_test.rb; minitest runs them at exit and prints its
# summary line.

require_relative "test_helper"

Dir[File.join(__dir__, "**", "*_test.rb")].sort.each { |f| require f }
