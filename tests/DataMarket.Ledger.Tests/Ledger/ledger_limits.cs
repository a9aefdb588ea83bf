using DataMarket.Ledger.Model;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// What the ledger refuses: figures that would pass 64 bits, and input that names no account, no code or no
/// supported currency. Each refusal is a clear rejection, and the store is left exactly as it was.
/// Each test works in a currency of its own, since the platform's accounts are shared within a database.
/// </summary>
public abstract class ledger_limits<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    private ILedger Ledger => fixture.Database.Ledger;

    private static string NewParty(string role) => role + "-" + Guid.NewGuid().ToString("N")[..10];

    private static TransferRequest Transfer(AccountRef debit, AccountRef credit, long amount, TransferCode code, bool pending = false) => new()
    {
        Id = Guid.NewGuid(),
        Debit = debit,
        Credit = credit,
        Amount = amount,
        Code = code,
        Pending = pending,
    };

    private async Task CommittedAsync(params TransferRequest[] transfers) =>
        Assert.Equal(LedgerStatus.Committed, (await Ledger.CommitAsync(transfers)).Status);

    /// <summary>Runs <paramref name="refused"/>, expects <paramref name="rejection"/>, and checks that no event, balance or transfer changed.</summary>
    private async Task AssertRefusedAndNothingChangedAsync(LedgerRejection rejection, Func<Task<LedgerResult>> refused, LedgerDatabase? database = null)
    {
        database ??= fixture.Database;
        var balancesBefore = await database.Ledger.GetBalancesAsync();
        var eventsBefore = (await database.VerifyAsync()).Events;

        var result = await refused();

        Assert.Equal(LedgerStatus.Rejected, result.Status);
        Assert.Equal(rejection, result.Rejection);
        Assert.False(string.IsNullOrWhiteSpace(result.Detail));
        Assert.Equal(balancesBefore, await database.Ledger.GetBalancesAsync());
        var report = await database.VerifyAsync();
        Assert.Equal(eventsBefore, report.Events);
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task a_pending_debit_that_would_wrap_an_accounts_debits_is_refused_with_overflow()
    {
        // The defect: 1 posted + MaxValue pending wrapped to a negative sum, passed the limit check, and
        // left a 1-cent account with an available balance near -9.2e18.
        const string currency = "CHF";
        var buyer = AccountRef.Buyer(NewParty("buyer"), currency);
        await CommittedAsync(Transfer(AccountRef.PaymentClearing(currency), buyer, 2, TransferCode.Charge));
        await CommittedAsync(Transfer(buyer, AccountRef.Refunds(currency), 1, TransferCode.Refund));

        var hold = Transfer(buyer, AccountRef.SellerHeld(NewParty("seller"), currency), long.MaxValue, TransferCode.Allocation, pending: true);
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.Overflow, () => Ledger.CommitAsync(hold));
        Assert.Null(await Ledger.GetTransferAsync(hold.Id));

        var balance = Assert.Single(await Ledger.GetBalancesAsync(buyer.Id));
        Assert.Equal(1, balance.AvailableBalance);
    }

    [Fact]
    public async Task posted_debits_past_64_bits_on_an_unlimited_account_are_refused_with_overflow()
    {
        const string currency = "SEK";
        var clearing = AccountRef.PaymentClearing(currency);
        await CommittedAsync(Transfer(clearing, AccountRef.Buyer(NewParty("buyer"), currency), long.MaxValue, TransferCode.Charge));

        var next = Transfer(clearing, AccountRef.Buyer(NewParty("buyer"), currency), 1, TransferCode.Charge);
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.Overflow, () => Ledger.CommitAsync(next));

        // A linked batch whose second transfer overflows commits neither.
        var first = Transfer(AccountRef.Refunds(currency), AccountRef.Buyer(NewParty("buyer"), currency), 5, TransferCode.Correction);
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.Overflow, () => Ledger.CommitAsync([first, next with { Id = Guid.NewGuid() }]));
        Assert.Null(await Ledger.GetTransferAsync(first.Id));
    }

    [Fact]
    public async Task a_seller_statement_total_past_64_bits_is_refused_with_overflow_and_totals_past_64_bits_still_verify()
    {
        // Earned counts allocations into both of a seller's accounts, so it can pass 64 bits while every
        // account stays within them. PostgreSQL used to throw 22003 and SQLite to store a float.
        const string currency = "NOK";
        const string period = "2026-11";
        // A fixed clock: every transfer here lands in the same statement period, whenever the test runs.
        await using var database = await fixture.OpenAnotherAsync(new ManualClock(new DateTimeOffset(2026, 11, 15, 12, 0, 0, TimeSpan.Zero)));
        var ledger = database.Ledger;
        async Task Committed(TransferRequest transfer) => Assert.Equal(LedgerStatus.Committed, (await ledger.CommitAsync(transfer)).Status);

        var seller = NewParty("seller");
        var first = AccountRef.Buyer(NewParty("buyer"), currency);
        var second = AccountRef.Buyer(NewParty("buyer"), currency);
        await Committed(Transfer(AccountRef.PaymentClearing(currency), first, long.MaxValue, TransferCode.Charge));
        await Committed(Transfer(AccountRef.Refunds(currency), second, long.MaxValue, TransferCode.Correction));
        await Committed(Transfer(first, AccountRef.SellerHeld(seller, currency), long.MaxValue - 10, TransferCode.Allocation));
        var before = await ledger.GetSellerStatementAsync(seller, period);
        Assert.Equal(long.MaxValue - 10, Assert.Single(before.Lines).Earned);

        var allocation = Transfer(second, AccountRef.SellerPayable(seller, currency), 11, TransferCode.Allocation);
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.Overflow, () => ledger.CommitAsync(allocation), database);
        Assert.Equal(before.Lines, (await ledger.GetSellerStatementAsync(seller, period)).Lines);

        // Exactly up to the limit is fine, and the statement says so in integers.
        await Committed(Transfer(second, AccountRef.SellerPayable(seller, currency), 10, TransferCode.Allocation));
        var line = Assert.Single((await ledger.GetSellerStatementAsync(seller, period)).Lines);
        Assert.Equal(new SellerStatementLine(currency, long.MaxValue, long.MaxValue - 10, 0), line);

        // The currency's totals are now about 3 x 2^63: the verifier adds them in 128 bits and gives a verdict.
        var report = await database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
        var totals = Assert.Single(report.Currencies, c => c.Currency == currency);
        Assert.Equal((Int128)long.MaxValue * 3, totals.CreditsPosted);
        Assert.Equal(totals.CreditsPosted, totals.DebitsPosted);
    }

    [Fact]
    public async Task an_undefined_code_a_default_account_and_a_dirty_reference_are_refused_and_change_nothing()
    {
        const string currency = "DKK";
        var buyer = AccountRef.Buyer(NewParty("buyer"), currency);
        await CommittedAsync(Transfer(AccountRef.PaymentClearing(currency), buyer, 100, TransferCode.Charge));
        var good = Transfer(buyer, AccountRef.PlatformFees(currency), 10, TransferCode.PlatformFee);

        await AssertRefusedAndNothingChangedAsync(LedgerRejection.UndefinedCode, () => Ledger.CommitAsync(good with { Code = (TransferCode)99 }));
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.InvalidAccount, () => Ledger.CommitAsync(good with { Debit = default }));
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.InvalidAccount, () => Ledger.CommitAsync(good with { Credit = default }));
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.InvalidReference, () => Ledger.CommitAsync(good with { Reference = "order\01" }));
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.InvalidReference, () => Ledger.CommitAsync(good with { Reference = "order\n1" }));
        // In a linked batch, the good transfer is not committed either.
        await AssertRefusedAndNothingChangedAsync(LedgerRejection.InvalidAccount, () => Ledger.CommitAsync([good, good with { Id = Guid.NewGuid(), Debit = default }]));
        Assert.Null(await Ledger.GetTransferAsync(good.Id));

        Assert.Equal(LedgerStatus.Committed, (await Ledger.CommitAsync(good)).Status);
    }
}

public sealed class ledger_limits_on_postgres(PostgresFixture fixture) : ledger_limits<PostgresFixture>(fixture);

public sealed class ledger_limits_on_sqlite(SqliteFixture fixture) : ledger_limits<SqliteFixture>(fixture);

/// <summary>Account references that name no account never get built.</summary>
public sealed class account_references
{
    [Theory]
    [InlineData("US D")]
    [InlineData("XYZ")]
    [InlineData("usd ")]
    [InlineData("US")]
    [InlineData("")]
    public void a_currency_outside_the_iso_4217_table_is_refused(string currency)
    {
        var error = Assert.Throws<ArgumentException>(() => AccountRef.Buyer("alice", currency));
        Assert.Contains("currency", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(AccountRef.TryCreate(AccountKind.Buyer, "alice", currency, out _, out var reason));
        Assert.NotNull(reason);
    }

    [Theory]
    [InlineData("al\0ice")]
    [InlineData("al\nice")]
    [InlineData("al\rice")]
    [InlineData("al\tice")]
    [InlineData("al\u0085ice")]
    [InlineData("al:ice")]
    [InlineData("")]
    public void an_owner_with_control_characters_separators_or_broken_text_is_refused(string owner)
    {
        Assert.Throws<ArgumentException>(() => AccountRef.SellerHeld(owner, "USD"));
        var parsing = Record.Exception(() => AccountRef.Parse($"seller_held:{owner}:USD"));
        Assert.True(parsing is FormatException or ArgumentException, parsing?.ToString() ?? "parsed");
    }

    [Fact]
    public void an_owner_with_a_lone_surrogate_is_refused()
    {
        // Built at run time: an attribute argument cannot carry a lone surrogate (metadata stores UTF-8).
        var owner = "al" + (char)0xD800 + "ice";
        Assert.Throws<ArgumentException>(() => AccountRef.Buyer(owner, "USD"));
        Assert.Throws<ArgumentException>(() => AccountRef.Buyer("al" + (char)0xDC00, "USD"));
        Assert.Equal("buyer:al\ud83d\ude00:USD", AccountRef.Buyer("al\ud83d\ude00", "USD").Id);
    }

    [Fact]
    public void an_undefined_kind_and_the_default_value_name_no_account()
    {
        Assert.Throws<ArgumentException>(() => new AccountRef((AccountKind)42, "alice", "USD"));
        Assert.False(default(AccountRef).IsValid);
        Assert.True(AccountRef.Buyer("alice", "usd").IsValid);
        Assert.Equal("buyer:alice:USD", AccountRef.Buyer("alice", "usd").Id);
        Assert.Equal("buyer:al\u00e9ice:JPY", AccountRef.Buyer("al\u00e9ice", "JPY").Id);
    }

    [Fact]
    public void the_currency_table_knows_its_minor_units()
    {
        Assert.Equal(2, Currencies.MinorUnitDigits("USD"));
        Assert.Equal(0, Currencies.MinorUnitDigits("JPY"));
        Assert.Equal(3, Currencies.MinorUnitDigits("BHD"));
        Assert.Throws<ArgumentException>(() => Currencies.MinorUnitDigits("XYZ"));
        Assert.All(Currencies.Codes, code => Assert.Matches("^[A-Z]{3}$", code));
    }
}
