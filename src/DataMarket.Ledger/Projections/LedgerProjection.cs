using DataMarket.Ledger.Model;

namespace DataMarket.Ledger.Projections;

internal sealed class AccountRow
{
    public required string Id { get; init; }
    public required AccountKind Kind { get; init; }
    public required string Owner { get; init; }
    public required string Currency { get; init; }
    public required AccountFlags Flags { get; init; }
    public long DebitsPending { get; set; }
    public long DebitsPosted { get; set; }
    public long CreditsPending { get; set; }
    public long CreditsPosted { get; set; }

    /// <summary>Read from the database (so written back as an update), rather than opened by the command being applied.</summary>
    public bool Loaded { get; init; }

    public AccountRow Clone() => (AccountRow)MemberwiseClone();

    public AccountBalance ToBalance() => new(Id, Kind, Owner, Currency, Flags, DebitsPending, DebitsPosted, CreditsPending, CreditsPosted);

    /// <summary>
    /// The no-negative rule, plus the 64-bit rule: pending + posted must fit on each side (as TigerBeetle
    /// requires), so that no balance derived from the four figures can wrap. Compared in 128 bits, so a
    /// corrupted row is reported rather than wrapped into looking valid.
    /// </summary>
    public bool IsWithinLimits() =>
        (!Flags.HasFlag(AccountFlags.DebitsMustNotExceedCredits) || (Int128)DebitsPending + DebitsPosted <= CreditsPosted)
        && (!Flags.HasFlag(AccountFlags.CreditsMustNotExceedDebits) || (Int128)CreditsPending + CreditsPosted <= DebitsPosted)
        && DebitsPending >= 0 && CreditsPending >= 0 && DebitsPosted >= 0 && CreditsPosted >= 0
        && FitsIn64Bits();

    private bool FitsIn64Bits() =>
        (Int128)DebitsPending + DebitsPosted <= long.MaxValue && (Int128)CreditsPending + CreditsPosted <= long.MaxValue;

    /// <exception cref="OverflowException">Pending + posted passes 64 bits on either side.</exception>
    public void EnsureFitsIn64Bits()
    {
        if (!FitsIn64Bits())
        {
            throw new OverflowException($"Account {Id}'s pending + posted figures would pass 64 bits.");
        }
    }
}

internal readonly record struct StatementKey(string Seller, string Currency, string Period);

internal sealed record StatementTotals(long Earned, long Held, long Paid)
{
    public static StatementTotals Zero { get; } = new(0, 0, 0);

    public StatementTotals Add(long earned, long held, long paid) =>
        new(checked(Earned + earned), checked(Held + held), checked(Paid + paid));

    public StatementTotals Add(StatementTotals delta) => Add(delta.Earned, delta.Held, delta.Paid);

    public static bool IsSellerKind(AccountKind kind) => kind is AccountKind.SellerHeld or AccountKind.SellerPayable;
}

/// <summary>
/// The one fold from ledger events to balances, transfers and seller statements. Used inline (over the
/// rows a command touches, with statements as deltas) and by the rebuild (over the whole log), so the
/// two cannot drift apart.
/// </summary>
internal sealed class LedgerProjection
{
    public Dictionary<string, AccountRow> Accounts { get; } = new(StringComparer.Ordinal);
    public Dictionary<Guid, TransferRecord> Transfers { get; } = [];
    public Dictionary<StatementKey, StatementTotals> Statements { get; } = [];

    /// <summary>
    /// Statement totals already stored (and read in the same unit of work) when <see cref="Statements"/> holds deltas: a delta
    /// whose sum with its stored total would pass 64 bits is refused here, before anything is written,
    /// instead of failing in the database (PostgreSQL: 22003) or silently turning into a float (SQLite).
    /// </summary>
    public IReadOnlyDictionary<StatementKey, StatementTotals>? StoredStatements { get; set; }

    public HashSet<string> TouchedAccounts { get; } = new(StringComparer.Ordinal);
    public HashSet<Guid> NewTransfers { get; } = [];
    public HashSet<Guid> ResolvedTransfers { get; } = [];

    public static string Period(DateTimeOffset timestamp) =>
        timestamp.UtcDateTime.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Applies one event; returns a rejection (and applies nothing further) if a rule breaks.</summary>
    public LedgerResult? Apply(LedgerEvent ledgerEvent, DateTimeOffset timestamp)
    {
        try
        {
            return ledgerEvent switch
            {
                AccountOpened opened => Open(opened),
                TransferCommitted committed => Commit(committed, timestamp),
                PendingTransferPosted posted => Resolve(posted.TransferId, post: true, timestamp),
                PendingTransferVoided voided => Resolve(voided.TransferId, post: false, timestamp),
                _ => throw new InvalidOperationException($"Unknown ledger event {ledgerEvent.GetType().Name}."),
            };
        }
        catch (OverflowException)
        {
            var subject = ledgerEvent switch
            {
                TransferCommitted committed => $"Transfer {committed.TransferId}",
                PendingTransferPosted posted => $"Posting {posted.TransferId}",
                PendingTransferVoided voided => $"Voiding {voided.TransferId}",
                _ => "An event",
            };
            return LedgerResult.Reject(LedgerRejection.Overflow, $"{subject} would take an account's debits or credits, or a seller statement total, past {long.MaxValue} (64 bits); nothing was written.");
        }
    }

    private LedgerResult? Open(AccountOpened opened)
    {
        Accounts[opened.AccountId] = new AccountRow
        {
            Id = opened.AccountId,
            Kind = AccountRef.ParseKind(opened.Kind),
            Owner = opened.Owner,
            Currency = opened.Currency,
            Flags = (AccountFlags)opened.Flags,
        };
        TouchedAccounts.Add(opened.AccountId);
        return null;
    }

    private LedgerResult? Commit(TransferCommitted transfer, DateTimeOffset timestamp)
    {
        var debit = Accounts[transfer.DebitAccountId];
        var credit = Accounts[transfer.CreditAccountId];
        if (debit.Currency != transfer.Currency || credit.Currency != transfer.Currency)
        {
            return LedgerResult.Reject(LedgerRejection.CurrencyMismatch, $"Transfer {transfer.TransferId} is in {transfer.Currency}.");
        }

        var code = Enum.Parse<TransferCode>(transfer.Code);
        if (transfer.Pending)
        {
            debit.DebitsPending = checked(debit.DebitsPending + transfer.Amount);
            credit.CreditsPending = checked(credit.CreditsPending + transfer.Amount);
        }
        else
        {
            debit.DebitsPosted = checked(debit.DebitsPosted + transfer.Amount);
            credit.CreditsPosted = checked(credit.CreditsPosted + transfer.Amount);
            AddToStatements(debit, credit, code, transfer.Amount, timestamp);
        }

        debit.EnsureFitsIn64Bits();
        credit.EnsureFitsIn64Bits();
        TouchedAccounts.Add(debit.Id);
        TouchedAccounts.Add(credit.Id);
        Transfers[transfer.TransferId] = new TransferRecord(
            transfer.TransferId,
            transfer.DebitAccountId,
            transfer.CreditAccountId,
            transfer.Amount,
            transfer.Currency,
            code,
            transfer.Pending,
            transfer.Pending ? TransferState.Pending : TransferState.Posted,
            transfer.BatchId,
            transfer.Reference,
            timestamp,
            null);
        NewTransfers.Add(transfer.TransferId);
        return CheckLimits(debit, credit, transfer.TransferId);
    }

    private LedgerResult? Resolve(Guid transferId, bool post, DateTimeOffset timestamp)
    {
        var transfer = Transfers[transferId];
        if (transfer.State != TransferState.Pending)
        {
            return LedgerResult.Reject(LedgerRejection.PendingAlreadyResolved, $"Transfer {transferId} is {transfer.State}.");
        }

        var debit = Accounts[transfer.DebitAccountId];
        var credit = Accounts[transfer.CreditAccountId];
        debit.DebitsPending = checked(debit.DebitsPending - transfer.Amount);
        credit.CreditsPending = checked(credit.CreditsPending - transfer.Amount);
        if (post)
        {
            debit.DebitsPosted = checked(debit.DebitsPosted + transfer.Amount);
            credit.CreditsPosted = checked(credit.CreditsPosted + transfer.Amount);
            AddToStatements(debit, credit, transfer.Code, transfer.Amount, timestamp);
        }

        debit.EnsureFitsIn64Bits();
        credit.EnsureFitsIn64Bits();
        TouchedAccounts.Add(debit.Id);
        TouchedAccounts.Add(credit.Id);
        Transfers[transferId] = transfer with
        {
            State = post ? TransferState.PendingPosted : TransferState.PendingVoided,
            ResolvedAt = timestamp,
        };
        ResolvedTransfers.Add(transferId);
        return CheckLimits(debit, credit, transferId);
    }

    private static LedgerResult? CheckLimits(AccountRow debit, AccountRow credit, Guid transferId)
    {
        foreach (var account in new[] { debit, credit })
        {
            if (!account.IsWithinLimits())
            {
                return LedgerResult.Reject(LedgerRejection.ExceedsBalance, $"Transfer {transferId} would take {account.Id} below zero.");
            }
        }

        return null;
    }

    /// <summary>Statements count posted money only: earned on allocation, held as the net change on hold, paid on payout.</summary>
    private void AddToStatements(AccountRow debit, AccountRow credit, TransferCode code, long amount, DateTimeOffset timestamp)
    {
        var period = Period(timestamp);
        if (StatementTotals.IsSellerKind(credit.Kind))
        {
            Add(new StatementKey(credit.Owner, credit.Currency, period),
                earned: code == TransferCode.Allocation ? amount : 0,
                held: credit.Kind == AccountKind.SellerHeld ? amount : 0,
                paid: 0);
        }

        if (StatementTotals.IsSellerKind(debit.Kind))
        {
            Add(new StatementKey(debit.Owner, debit.Currency, period),
                earned: 0,
                held: debit.Kind == AccountKind.SellerHeld ? -amount : 0,
                paid: debit.Kind == AccountKind.SellerPayable && code == TransferCode.Payout ? amount : 0);
        }
    }

    private void Add(StatementKey key, long earned, long held, long paid)
    {
        var current = Statements.TryGetValue(key, out var totals) ? totals : StatementTotals.Zero;
        var next = current.Add(earned, held, paid);
        if (StoredStatements?.GetValueOrDefault(key) is { } stored)
        {
            // Throws OverflowException (refused as Overflow) if the stored row would pass 64 bits.
            _ = stored.Add(next);
        }

        Statements[key] = next;
    }
}
