namespace DataMarket.Compute.Managed;

/// <summary>Small dense factorisations in float64, row-major.</summary>
internal static class DenseLinearAlgebra
{
    public static void CheckSquare(int length, int n, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (length < (long)n * n)
        {
            throw new ArgumentException($"{name} holds {length} elements; an {n}x{n} matrix needs {(long)n * n}.", name);
        }
    }

    public static void CholeskyFactor(Span<double> a, int n)
    {
        CheckSquare(a.Length, n, nameof(a));
        for (int j = 0; j < n; j++)
        {
            double diagonal = a[j * n + j];
            for (int p = 0; p < j; p++)
            {
                diagonal -= a[j * n + p] * a[j * n + p];
            }
            if (!(diagonal > 0))
            {
                throw new ArgumentException($"Matrix is not positive definite: pivot {j} is {diagonal:G6}.", nameof(a));
            }
            double pivot = Math.Sqrt(diagonal);
            a[j * n + j] = pivot;
            for (int i = j + 1; i < n; i++)
            {
                double sum = a[i * n + j];
                for (int p = 0; p < j; p++)
                {
                    sum -= a[i * n + p] * a[j * n + p];
                }
                a[i * n + j] = sum / pivot;
            }
            for (int i = 0; i < j; i++)
            {
                a[i * n + j] = 0;
            }
        }
    }

    public static void CholeskySolve(ReadOnlySpan<double> l, int n, Span<double> b, int rightHandSides)
    {
        CheckSquare(l.Length, n, nameof(l));
        ArgumentOutOfRangeException.ThrowIfNegative(rightHandSides);
        if (b.Length < (long)n * rightHandSides)
        {
            throw new ArgumentException($"Right-hand sides need {n * rightHandSides} elements.", nameof(b));
        }
        for (int column = 0; column < rightHandSides; column++)
        {
            for (int i = 0; i < n; i++) // L y = b
            {
                double sum = b[i * rightHandSides + column];
                for (int p = 0; p < i; p++)
                {
                    sum -= l[i * n + p] * b[p * rightHandSides + column];
                }
                b[i * rightHandSides + column] = sum / l[i * n + i];
            }
            for (int i = n - 1; i >= 0; i--) // Lᵀ x = y
            {
                double sum = b[i * rightHandSides + column];
                for (int p = i + 1; p < n; p++)
                {
                    sum -= l[p * n + i] * b[p * rightHandSides + column];
                }
                b[i * rightHandSides + column] = sum / l[i * n + i];
            }
        }
    }

    /// <summary>Cyclic Jacobi rotations: slow (O(n³) per sweep) but accurate to working precision, fine for small n.</summary>
    public static void JacobiEigen(ReadOnlySpan<double> matrix, int n, Span<double> eigenvalues, Span<double> eigenvectors)
    {
        CheckSquare(matrix.Length, n, nameof(matrix));
        CheckSquare(eigenvectors.Length, n, nameof(eigenvectors));
        if (eigenvalues.Length < n)
        {
            throw new ArgumentException($"Eigenvalues need {n} elements.", nameof(eigenvalues));
        }
        var a = matrix[..(n * n)].ToArray();
        var v = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            v[i * n + i] = 1;
        }
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double offDiagonal = 0, scale = 0;
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    if (i != j)
                    {
                        offDiagonal += a[i * n + j] * a[i * n + j];
                    }
                    scale += a[i * n + j] * a[i * n + j];
                }
            }
            if (offDiagonal <= 1e-30 * scale || offDiagonal == 0)
            {
                break;
            }
            for (int p = 0; p < n - 1; p++)
            {
                for (int q = p + 1; q < n; q++)
                {
                    double apq = a[p * n + q];
                    if (apq == 0)
                    {
                        continue;
                    }
                    double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0)
                    {
                        t = 1;
                    }
                    double cos = 1 / Math.Sqrt(t * t + 1), sin = t * cos;
                    for (int r = 0; r < n; r++) // A <- A J (columns p, q)
                    {
                        double arp = a[r * n + p], arq = a[r * n + q];
                        a[r * n + p] = cos * arp - sin * arq;
                        a[r * n + q] = sin * arp + cos * arq;
                    }
                    for (int r = 0; r < n; r++) // A <- Jᵀ A (rows p, q)
                    {
                        double apr = a[p * n + r], aqr = a[q * n + r];
                        a[p * n + r] = cos * apr - sin * aqr;
                        a[q * n + r] = sin * apr + cos * aqr;
                    }
                    for (int r = 0; r < n; r++) // V <- V J
                    {
                        double vrp = v[r * n + p], vrq = v[r * n + q];
                        v[r * n + p] = cos * vrp - sin * vrq;
                        v[r * n + q] = sin * vrp + cos * vrq;
                    }
                }
            }
        }
        var order = Enumerable.Range(0, n).OrderBy(i => a[i * n + i]).ToArray();
        for (int j = 0; j < n; j++)
        {
            eigenvalues[j] = a[order[j] * n + order[j]];
            for (int r = 0; r < n; r++)
            {
                eigenvectors[r * n + j] = v[r * n + order[j]];
            }
        }
    }
}
