using DataMarket.Ledger.Model;
using DataMarket.Ledger.Tests.Harness;
using FsCheck;
using FsCheck.Fluent;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// Random sequences of charges, purchases (linked allocation + fee), hold releases, payouts (pending,
/// then posted or voided), refunds and replays of earlier commands, run against the real store and
/// against a tiny in-memory model of the balances.
/// </summary>
public abstract class ledger_properties<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    private static int s_runs;

    public abstract record Command;
    public sealed record Charge(int Buyer, int Currency, long Amount) : Command;
    public sealed record Purchase(int Buyer, int Seller, int Currency, long Amount, long Fee) : Command;
    public sealed record Release(int Seller, int Currency, long Amount) : Command;
    public sealed record StartPayout(int Seller, int Currency, long Amount) : Command;
    public sealed record ResolvePayout(int Index, bool Post) : Command;
    public sealed record Refund(int Buyer, int Currency, long Amount) : Command;
    public sealed record HoldThenVoid(int Buyer, int Seller, int Currency, long Amount) : Command;
    public sealed record ReplayEarlier(int Index) : Command;

    /// <summary>Transfer amounts: small ones here; the 64-bit run adds amounts near and at <see cref="long.MaxValue"/>.</summary>
    protected virtual Gen<long> AmountGen() => Gen.Choose(1, 5_000).Select(a => (long)a);

    /// <summary>Platform fees (0: a purchase without one).</summary>
    protected virtual Gen<long> FeeGen() => Gen.Choose(0, 300).Select(f => (long)f);

    private Gen<Command> CommandGen()
    {
        var party = Gen.Choose(0, 1);
        var currency = Gen.Choose(0, 1);
        var amount = AmountGen();
        return Gen.Frequency(
            (4, party.SelectMany(b => currency.SelectMany(c => amount.Select(a => (Command)new Charge(b, c, a))))),
            (5, party.SelectMany(b => party.SelectMany(s => currency.SelectMany(c => amount.SelectMany(a => FeeGen().Select(f => (Command)new Purchase(b, s, c, a, f))))))),
            (3, party.SelectMany(s => currency.SelectMany(c => amount.Select(a => (Command)new Release(s, c, a))))),
            (3, party.SelectMany(s => currency.SelectMany(c => amount.Select(a => (Command)new StartPayout(s, c, a))))),
            (3, Gen.Choose(0, 20).SelectMany(i => Gen.Elements(true, false).Select(p => (Command)new ResolvePayout(i, p)))),
            (2, party.SelectMany(b => currency.SelectMany(c => amount.Select(a => (Command)new Refund(b, c, a))))),
            (2, party.SelectMany(b => party.SelectMany(s => currency.SelectMany(c => amount.Select(a => (Command)new HoldThenVoid(b, s, c, a)))))),
            (3, Gen.Choose(0, 30).Select(i => (Command)new ReplayEarlier(i))));
    }

    [Fact]
    public void random_command_sequences_keep_every_ledger_invariant()
    {
        var sequences = Gen.ListOf(CommandGen()).Select(l => l.ToArray()).Resize(24);
        var property = Prop.ForAll(sequences.ToArbitrary(), commands => RunAsync(commands).GetAwaiter().GetResult());
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(12).WithQuietOnSuccess(true), property);
    }

    private async Task RunAsync(Command[] commands)
    {
        var ledger = fixture.Database.Ledger;
        var run = Guid.NewGuid().ToString("N")[..8];
        // Platform accounts are shared by every run in this database: each run takes its own pair of
        // currencies where it can, so one run's amounts near 64 bits do not leave the next little to do.
        var pair = Interlocked.Increment(ref s_runs) % (Currencies.Codes.Count / 2);
        string[] currencies = [Currencies.Codes[2 * pair], Currencies.Codes[2 * pair + 1]];
        var model = new BalanceModel(await ledger.GetBalancesAsync());
        var committed = new List<TransferRequest[]>();
        var pendings = new List<TransferRequest>();

        AccountRef Buyer(int b, int c) => AccountRef.Buyer($"b{b}-{run}", currencies[c]);
        AccountRef Held(int s, int c) => AccountRef.SellerHeld($"s{s}-{run}", currencies[c]);
        AccountRef Payable(int s, int c) => AccountRef.SellerPayable($"s{s}-{run}", currencies[c]);
        static TransferRequest T(AccountRef debit, AccountRef credit, long amount, TransferCode code, bool pending = false) =>
            new() { Id = Guid.NewGuid(), Debit = debit, Credit = credit, Amount = amount, Code = code, Pending = pending };

        async Task<bool> CommitAsync(params TransferRequest[] batch)
        {
            var expected = model.TryApply(batch);
            var result = await ledger.CommitAsync(batch);
            Assert.True(expected is null ? result.Status == LedgerStatus.Committed : result.Rejection == expected, $"expected {expected?.ToString() ?? "Committed"}, got {result}");
            if (expected is null)
            {
                committed.Add(batch);
            }

            return expected is null;
        }

        foreach (var command in commands)
        {
            switch (command)
            {
                case Charge(var b, var c, var amount):
                    await CommitAsync(T(AccountRef.PaymentClearing(currencies[c]), Buyer(b, c), amount, TransferCode.Charge));
                    break;
                case Purchase(var b, var s, var c, var amount, var fee):
                    var allocation = T(Buyer(b, c), Held(s, c), amount, TransferCode.Allocation);
                    await (fee > 0
                        ? CommitAsync(allocation, T(Buyer(b, c), AccountRef.PlatformFees(currencies[c]), fee, TransferCode.PlatformFee))
                        : CommitAsync(allocation));
                    break;
                case Release(var s, var c, var amount):
                    await CommitAsync(T(Held(s, c), Payable(s, c), amount, TransferCode.HoldRelease));
                    break;
                case StartPayout(var s, var c, var amount):
                    var payout = T(Payable(s, c), AccountRef.PayoutsInTransit(currencies[c]), amount, TransferCode.Payout, pending: true);
                    if (await CommitAsync(payout))
                    {
                        pendings.Add(payout);
                    }

                    break;
                case ResolvePayout(var index, var post) when pendings.Count > 0:
                    var target = pendings[index % pendings.Count];
                    var firstTime = model.TryResolve(target, post, out var expectedStatus);
                    var resolved = post ? await ledger.PostPendingAsync(target.Id) : await ledger.VoidPendingAsync(target.Id);
                    Assert.Equal(expectedStatus, resolved.Status);
                    Assert.True(firstTime || resolved.Status != LedgerStatus.Committed);
                    break;
                case Refund(var b, var c, var amount):
                    await CommitAsync(T(Buyer(b, c), AccountRef.Refunds(currencies[c]), amount, TransferCode.Refund));
                    break;
                case HoldThenVoid(var b, var s, var c, var amount):
                    var before = await ledger.GetBalancesAsync();
                    var hold = T(Buyer(b, c), Held(s, c), amount, TransferCode.Allocation, pending: true);
                    if (await CommitAsync(hold))
                    {
                        Assert.True(model.TryResolve(hold, post: false, out _));
                        Assert.Equal(LedgerStatus.Committed, (await ledger.VoidPendingAsync(hold.Id)).Status);
                        var after = await ledger.GetBalancesAsync();
                        var untouched = after.Where(a => before.Any(x => x.AccountId == a.AccountId)).ToList();
                        Assert.Equal(before, untouched);
                    }

                    break;
                case ReplayEarlier(var index) when committed.Count > 0:
                    var replay = await ledger.CommitAsync(committed[index % committed.Count]);
                    Assert.Equal(LedgerStatus.AlreadyCommitted, replay.Status);
                    break;
            }
        }

        foreach (var balance in await ledger.GetBalancesAsync())
        {
            Assert.Equal(model.Expected(balance.AccountId) ?? balance, balance);
        }

        var report = await fixture.Database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    /// <summary>An independent, obviously-correct model: four counters per account and the no-negative rule.</summary>
    private sealed class BalanceModel(IReadOnlyList<AccountBalance> initial)
    {
        private readonly Dictionary<string, AccountBalance> _accounts = initial.ToDictionary(a => a.AccountId);
        private readonly Dictionary<Guid, TransferState> _pending = [];

        public AccountBalance? Expected(string id) => _accounts.GetValueOrDefault(id);

        /// <summary>Applies the batch and returns null, or returns the rejection the ledger must give and applies nothing.</summary>
        public LedgerRejection? TryApply(IReadOnlyList<TransferRequest> batch)
        {
            var working = new Dictionary<string, AccountBalance>(_accounts);
            foreach (var t in batch)
            {
                var debit = Get(working, t.Debit);
                var credit = Get(working, t.Credit);
                // Every figure in 128 bits: the ledger must refuse whatever would not fit in 64.
                Int128 debitsPending = debit.DebitsPending + (Int128)(t.Pending ? t.Amount : 0);
                Int128 debitsPosted = debit.DebitsPosted + (Int128)(t.Pending ? 0 : t.Amount);
                Int128 creditsPending = credit.CreditsPending + (Int128)(t.Pending ? t.Amount : 0);
                Int128 creditsPosted = credit.CreditsPosted + (Int128)(t.Pending ? 0 : t.Amount);
                if (debitsPending + debitsPosted > long.MaxValue || creditsPending + creditsPosted > long.MaxValue)
                {
                    return LedgerRejection.Overflow;
                }

                working[t.Debit.Id] = debit with { DebitsPending = (long)debitsPending, DebitsPosted = (long)debitsPosted };
                working[t.Credit.Id] = credit with { CreditsPending = (long)creditsPending, CreditsPosted = (long)creditsPosted };
                if (!Allowed(working[t.Debit.Id]) || !Allowed(working[t.Credit.Id]))
                {
                    return LedgerRejection.ExceedsBalance;
                }
            }

            foreach (var (id, balance) in working)
            {
                _accounts[id] = balance;
            }

            foreach (var t in batch.Where(t => t.Pending))
            {
                _pending[t.Id] = TransferState.Pending;
            }

            return null;
        }

        public bool TryResolve(TransferRequest t, bool post, out LedgerStatus expected)
        {
            var state = _pending[t.Id];
            var wanted = post ? TransferState.PendingPosted : TransferState.PendingVoided;
            if (state != TransferState.Pending)
            {
                expected = state == wanted ? LedgerStatus.AlreadyCommitted : LedgerStatus.Rejected;
                return false;
            }

            var debit = _accounts[t.Debit.Id];
            var credit = _accounts[t.Credit.Id];
            _accounts[t.Debit.Id] = debit with
            {
                DebitsPending = debit.DebitsPending - t.Amount,
                DebitsPosted = debit.DebitsPosted + (post ? t.Amount : 0),
            };
            _accounts[t.Credit.Id] = credit with
            {
                CreditsPending = credit.CreditsPending - t.Amount,
                CreditsPosted = credit.CreditsPosted + (post ? t.Amount : 0),
            };
            _pending[t.Id] = wanted;
            expected = LedgerStatus.Committed;
            return true;
        }

        private static AccountBalance Get(Dictionary<string, AccountBalance> accounts, AccountRef account) =>
            accounts.TryGetValue(account.Id, out var balance)
                ? balance
                : new AccountBalance(account.Id, account.Kind, account.Owner, account.Currency, account.Flags, 0, 0, 0, 0);

        private static bool Allowed(AccountBalance balance) =>
            !balance.Flags.HasFlag(AccountFlags.DebitsMustNotExceedCredits)
            || (Int128)balance.DebitsPending + balance.DebitsPosted <= balance.CreditsPosted;
    }
}

/// <summary>
/// The same sequences with amounts near and at <see cref="long.MaxValue"/>, so that debits, credits and
/// pending + posted sums cross 64 bits: every such command must be refused with Overflow and change
/// nothing, and the model (which adds in 128 bits) says exactly which ones.
/// </summary>
public abstract class ledger_properties_near_64_bits<TFixture>(TFixture fixture) : ledger_properties<TFixture>(fixture)
    where TFixture : LedgerDatabaseFixture
{
    protected override Gen<long> AmountGen() => Gen.Frequency(
        (2, Gen.Choose(1, 5_000).Select(a => (long)a)),
        (3, Gen.Choose(0, 5_000).Select(k => long.MaxValue - k)),
        (2, Gen.Constant(long.MaxValue)),
        (2, Gen.Choose(-5_000, 5_000).Select(k => long.MaxValue / 2 + k)));

    protected override Gen<long> FeeGen() => Gen.Frequency((1, Gen.Constant(0L)), (3, AmountGen()));
}

public sealed class ledger_properties_near_64_bits_on_postgres(PostgresFixture fixture) : ledger_properties_near_64_bits<PostgresFixture>(fixture);

public sealed class ledger_properties_near_64_bits_on_sqlite(SqliteFixture fixture) : ledger_properties_near_64_bits<SqliteFixture>(fixture);

public sealed class ledger_properties_on_postgres(PostgresFixture fixture) : ledger_properties<PostgresFixture>(fixture);

public sealed class ledger_properties_on_sqlite(SqliteFixture fixture) : ledger_properties<SqliteFixture>(fixture);
