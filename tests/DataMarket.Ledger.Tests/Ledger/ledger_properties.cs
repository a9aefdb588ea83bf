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
    private static readonly string[] s_currencies = ["USD", "EUR"];

    public abstract record Command;
    public sealed record Charge(int Buyer, int Currency, long Amount) : Command;
    public sealed record Purchase(int Buyer, int Seller, int Currency, long Amount, long Fee) : Command;
    public sealed record Release(int Seller, int Currency, long Amount) : Command;
    public sealed record StartPayout(int Seller, int Currency, long Amount) : Command;
    public sealed record ResolvePayout(int Index, bool Post) : Command;
    public sealed record Refund(int Buyer, int Currency, long Amount) : Command;
    public sealed record HoldThenVoid(int Buyer, int Seller, int Currency, long Amount) : Command;
    public sealed record ReplayEarlier(int Index) : Command;

    private static Gen<Command> CommandGen()
    {
        var party = Gen.Choose(0, 1);
        var currency = Gen.Choose(0, 1);
        var amount = Gen.Choose(1, 5_000).Select(a => (long)a);
        return Gen.Frequency(
            (4, party.SelectMany(b => currency.SelectMany(c => amount.Select(a => (Command)new Charge(b, c, a))))),
            (5, party.SelectMany(b => party.SelectMany(s => currency.SelectMany(c => amount.SelectMany(a => Gen.Choose(0, 300).Select(f => (Command)new Purchase(b, s, c, a, f))))))),
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
        var model = new BalanceModel(await ledger.GetBalancesAsync());
        var committed = new List<TransferRequest[]>();
        var pendings = new List<TransferRequest>();

        AccountRef Buyer(int b, int c) => AccountRef.Buyer($"b{b}-{run}", s_currencies[c]);
        AccountRef Held(int s, int c) => AccountRef.SellerHeld($"s{s}-{run}", s_currencies[c]);
        AccountRef Payable(int s, int c) => AccountRef.SellerPayable($"s{s}-{run}", s_currencies[c]);
        static TransferRequest T(AccountRef debit, AccountRef credit, long amount, TransferCode code, bool pending = false) =>
            new() { Id = Guid.NewGuid(), Debit = debit, Credit = credit, Amount = amount, Code = code, Pending = pending };

        async Task<bool> CommitAsync(params TransferRequest[] batch)
        {
            var expected = model.TryApply(batch);
            var result = await ledger.CommitAsync(batch);
            Assert.Equal(expected ? LedgerStatus.Committed : LedgerStatus.Rejected, result.Status);
            if (expected)
            {
                committed.Add(batch);
            }
            else
            {
                Assert.Equal(LedgerRejection.ExceedsBalance, result.Rejection);
            }

            return expected;
        }

        foreach (var command in commands)
        {
            switch (command)
            {
                case Charge(var b, var c, var amount):
                    await CommitAsync(T(AccountRef.PaymentClearing(s_currencies[c]), Buyer(b, c), amount, TransferCode.Charge));
                    break;
                case Purchase(var b, var s, var c, var amount, var fee):
                    var allocation = T(Buyer(b, c), Held(s, c), amount, TransferCode.Allocation);
                    await (fee > 0
                        ? CommitAsync(allocation, T(Buyer(b, c), AccountRef.PlatformFees(s_currencies[c]), fee, TransferCode.PlatformFee))
                        : CommitAsync(allocation));
                    break;
                case Release(var s, var c, var amount):
                    await CommitAsync(T(Held(s, c), Payable(s, c), amount, TransferCode.HoldRelease));
                    break;
                case StartPayout(var s, var c, var amount):
                    var payout = T(Payable(s, c), AccountRef.PayoutsInTransit(s_currencies[c]), amount, TransferCode.Payout, pending: true);
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
                    await CommitAsync(T(Buyer(b, c), AccountRef.Refunds(s_currencies[c]), amount, TransferCode.Refund));
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

        public bool TryApply(IReadOnlyList<TransferRequest> batch)
        {
            var working = new Dictionary<string, AccountBalance>(_accounts);
            foreach (var t in batch)
            {
                var debit = Get(working, t.Debit);
                var credit = Get(working, t.Credit);
                working[t.Debit.Id] = t.Pending ? debit with { DebitsPending = debit.DebitsPending + t.Amount } : debit with { DebitsPosted = debit.DebitsPosted + t.Amount };
                working[t.Credit.Id] = t.Pending ? credit with { CreditsPending = credit.CreditsPending + t.Amount } : credit with { CreditsPosted = credit.CreditsPosted + t.Amount };
                if (!Allowed(working[t.Debit.Id]) || !Allowed(working[t.Credit.Id]))
                {
                    return false;
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

            return true;
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
            || balance.DebitsPending + balance.DebitsPosted <= balance.CreditsPosted;
    }
}

public sealed class ledger_properties_on_postgres(PostgresFixture fixture) : ledger_properties<PostgresFixture>(fixture);

public sealed class ledger_properties_on_sqlite(SqliteFixture fixture) : ledger_properties<SqliteFixture>(fixture);
