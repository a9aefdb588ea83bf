namespace DataMarket.Ledger.Model;

/// <summary>The market's accounts. Each exists once per currency, and per party where it has an owner.</summary>
public enum AccountKind
{
    /// <summary>What the platform owes a buyer (their prepaid funds). Owner: buyer id.</summary>
    Buyer,
    /// <summary>Seller earnings released and owed to the seller. Owner: seller id.</summary>
    SellerPayable,
    /// <summary>Seller earnings on hold (refund window, review). Owner: seller id.</summary>
    SellerHeld,
    /// <summary>The platform's revenue.</summary>
    PlatformFees,
    /// <summary>The boundary with the card processor: money entering and leaving. May go either way.</summary>
    PaymentClearing,
    /// <summary>Payouts sent to the processor but not yet settled.</summary>
    PayoutsInTransit,
    /// <summary>Refunds returned to buyers.</summary>
    Refunds,
}

[Flags]
public enum AccountFlags
{
    None = 0,
    /// <summary>Credit-normal account that may not go negative: debits (pending + posted) never exceed posted credits.</summary>
    DebitsMustNotExceedCredits = 1,
    /// <summary>Debit-normal account that may not go negative: credits (pending + posted) never exceed posted debits.</summary>
    CreditsMustNotExceedDebits = 2,
}

/// <summary>Names an account: kind, owner and currency. Its id reads "seller_payable:seller-7:USD".</summary>
public readonly record struct AccountRef
{
    public const string PlatformOwner = "platform";

    /// <summary>Longest owner id accepted; ids are keys, not free text.</summary>
    public const int MaxOwnerLength = 200;

    /// <exception cref="ArgumentException">The kind is undefined, the owner is empty, too long or holds ':' or control characters, or the currency is not a supported ISO 4217 code.</exception>
    public AccountRef(AccountKind kind, string owner, string currency)
    {
        var problem = Problem(kind, owner, currency);
        if (problem is not null)
        {
            throw new ArgumentException(problem);
        }

        Kind = kind;
        Owner = owner;
        Currency = currency.ToUpperInvariant();
    }

    /// <summary>Builds an account reference, or says in <paramref name="error"/> why these parts name no account.</summary>
    public static bool TryCreate(AccountKind kind, string? owner, string? currency, out AccountRef account, out string? error)
    {
        error = Problem(kind, owner, currency);
        account = error is null ? new AccountRef(kind, owner!, currency!) : default;
        return error is null;
    }

    /// <summary>
    /// False for <c>default(AccountRef)</c>, the one value that bypasses the constructor's checks (it has
    /// no owner and no currency, and names no account).
    /// </summary>
    public bool IsValid => Owner is not null && Currency is not null;

    /// <summary>Why the parts name no account, or null when they do.</summary>
    private static string? Problem(AccountKind kind, string? owner, string? currency)
    {
        if (!Enum.IsDefined(kind))
        {
            return $"Account kind {(int)kind} is not defined.";
        }

        if (string.IsNullOrEmpty(owner))
        {
            return "An account needs an owner.";
        }

        if (owner.Length > MaxOwnerLength)
        {
            return $"Owner ids are at most {MaxOwnerLength} characters.";
        }

        if (owner.Contains(':', StringComparison.Ordinal))
        {
            return "An owner id may not contain ':' (it separates kind, owner and currency).";
        }

        // PostgreSQL refuses NUL in text (22021) and SQLite would store it, so the two stores would differ;
        // newlines and other control characters break statements and logs. Neither belongs in an id.
        if (!IsCleanText(owner))
        {
            return "An owner id may not contain control characters (NUL, newlines, tabs) or broken UTF-16.";
        }

        if (string.IsNullOrEmpty(currency))
        {
            return "An account needs a currency.";
        }

        if (!Currencies.IsSupported(currency.ToUpperInvariant()))
        {
            return $"Currency '{currency}' is not a supported ISO 4217 code (supported: {string.Join(", ", Currencies.Codes)}).";
        }

        return null;
    }

    /// <summary>No control characters and no unpaired surrogates: text both stores keep exactly as given.</summary>
    internal static bool IsCleanText(string text) => !text.Any(char.IsControl) && !HasLoneSurrogate(text);

    private static bool HasLoneSurrogate(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return true;
            }
        }

        return false;
    }

    public AccountKind Kind { get; }
    public string Owner { get; }
    public string Currency { get; }

    public string Id => $"{KindName(Kind)}:{Owner}:{Currency}";

    public AccountFlags Flags => FlagsFor(Kind);

    public static AccountRef Buyer(string buyerId, string currency) => new(AccountKind.Buyer, buyerId, currency);
    public static AccountRef SellerPayable(string sellerId, string currency) => new(AccountKind.SellerPayable, sellerId, currency);
    public static AccountRef SellerHeld(string sellerId, string currency) => new(AccountKind.SellerHeld, sellerId, currency);
    public static AccountRef PlatformFees(string currency) => new(AccountKind.PlatformFees, PlatformOwner, currency);
    public static AccountRef PaymentClearing(string currency) => new(AccountKind.PaymentClearing, PlatformOwner, currency);
    public static AccountRef PayoutsInTransit(string currency) => new(AccountKind.PayoutsInTransit, PlatformOwner, currency);
    public static AccountRef Refunds(string currency) => new(AccountKind.Refunds, PlatformOwner, currency);

    /// <summary>The platform's own accounts, owned by <see cref="PlatformOwner"/>; every other kind has a party as owner.</summary>
    public static bool IsPlatformKind(AccountKind kind) =>
        kind is AccountKind.PlatformFees or AccountKind.PaymentClearing or AccountKind.PayoutsInTransit or AccountKind.Refunds;

    public static AccountFlags FlagsFor(AccountKind kind) => kind switch
    {
        AccountKind.PaymentClearing or AccountKind.Refunds => AccountFlags.None,
        _ => AccountFlags.DebitsMustNotExceedCredits,
    };

    public static string KindName(AccountKind kind) => kind switch
    {
        AccountKind.Buyer => "buyer",
        AccountKind.SellerPayable => "seller_payable",
        AccountKind.SellerHeld => "seller_held",
        AccountKind.PlatformFees => "platform_fees",
        AccountKind.PaymentClearing => "payment_clearing",
        AccountKind.PayoutsInTransit => "payouts_in_transit",
        AccountKind.Refunds => "refunds",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static AccountKind ParseKind(string name) => name switch
    {
        "buyer" => AccountKind.Buyer,
        "seller_payable" => AccountKind.SellerPayable,
        "seller_held" => AccountKind.SellerHeld,
        "platform_fees" => AccountKind.PlatformFees,
        "payment_clearing" => AccountKind.PaymentClearing,
        "payouts_in_transit" => AccountKind.PayoutsInTransit,
        "refunds" => AccountKind.Refunds,
        _ => throw new FormatException($"Unknown account kind '{name}'."),
    };

    public static AccountRef Parse(string id)
    {
        var parts = id.Split(':');
        if (parts.Length != 3)
        {
            throw new FormatException($"Account id '{id}' is not kind:owner:currency.");
        }

        return new AccountRef(ParseKind(parts[0]), parts[1], parts[2]);
    }

    public override string ToString() => Id;
}

/// <summary>An account's balances in minor units, as TigerBeetle keeps them.</summary>
public sealed record AccountBalance(
    string AccountId,
    AccountKind Kind,
    string Owner,
    string Currency,
    AccountFlags Flags,
    long DebitsPending,
    long DebitsPosted,
    long CreditsPending,
    long CreditsPosted)
{
    /// <summary>Posted credits minus posted debits (positive for a credit-normal account in funds).</summary>
    public long PostedBalance => CreditsPosted - DebitsPosted;

    /// <summary>What can still be debited: posted balance less pending debits.</summary>
    /// <remarks>The ledger keeps pending + posted within 64 bits on each side, so this cannot wrap.</remarks>
    public long AvailableBalance => CreditsPosted - (DebitsPosted + DebitsPending);
}
